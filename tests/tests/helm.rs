//! The Helm chart and the user's path from zero to a Ready platform, on the local control plane.
//!
//! - the chart's CRD copy equals `crds/`, `helm lint --strict` is clean, the rendered objects are
//!   hardened and least-privilege;
//! - `helm template | kubectl apply --dry-run=server` passes (cluster-wide and namespaced mode), and
//!   every file in `examples/` passes server-side validation against the committed CRD;
//! - `helm install` from the repository, then the operator binary runs as a local process with a
//!   token of the chart's ServiceAccount (TokenRequest API), so it has exactly the chart's RBAC,
//!   and every example reaches `Ready`; `helm uninstall` leaves none of the chart's objects behind.
//!
//! The operator image cannot run here (kwok plays the kubelet and runs no containers), which is why
//! the operator runs beside the cluster with the pod's arguments, environment and credentials.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use beer_meetup_tests::{repo_root, run, run_raw, tool, workspace_binary, yaml_documents};
use serde_json::Value;
use test_fixtures::{TestCluster, free_port};

const CHART: &str = "charts/beer-meetup-operator";
const CRD_FILE: &str = "beermeetupplatforms.yaml";
/// Kubernetes version for `helm template` (offline rendering has no cluster to ask).
const KUBE_VERSION: &str = "1.34.0";
/// How long one example may take to become Ready on a busy 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// The chart's object names: `<release>-beer-meetup-operator`, or the release name alone when it
/// already contains the chart name (as in the README's `helm install beer-meetup-operator ...`).
fn fullname(release: &str) -> String {
    if release.contains("beer-meetup-operator") {
        release.to_owned()
    } else {
        format!("{release}-beer-meetup-operator")
    }
}

fn chart_dir() -> PathBuf {
    repo_root().join(CHART)
}

fn helm() -> Command {
    let mut c = Command::new(tool("helm"));
    // Keep helm's caches and config away from the user's home.
    let home = std::env::temp_dir().join("beer-meetup-helm-home");
    c.env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    c
}

fn helm_template(release: &str, namespace: &str, sets: &[&str]) -> Result<String> {
    let mut cmd = helm();
    cmd.args(["template", release]).arg(chart_dir()).args([
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
    ]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    run(&mut cmd, None)
}

fn kubectl(cluster: &TestCluster) -> Command {
    cluster.kubectl().expect("kubectl from make test-deps")
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("examples"))
        .expect("examples/ exists")
        .map(|e| e.expect("readable examples/").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

/// `metadata.name` of the one BeerMeetupPlatform in an example file.
fn example_name(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)?;
    let docs = yaml_documents(&text)?;
    ensure!(
        docs.len() == 1,
        "{} should hold one resource",
        path.display()
    );
    ensure!(
        docs[0]["kind"].as_str() == Some("BeerMeetupPlatform"),
        "{} should hold a BeerMeetupPlatform",
        path.display()
    );
    ensure!(
        docs[0]["metadata"]["namespace"].is_null(),
        "{} should not pin a namespace (users pick one with -n)",
        path.display()
    );
    docs[0]["metadata"]["name"]
        .as_str()
        .map(str::to_owned)
        .context("metadata.name")
}

/// Applies the committed CRD (server-side, idempotent) and waits until it is Established: the
/// examples and the dry runs need it.
async fn install_crd(cluster: &TestCluster) -> Result<()> {
    run(
        kubectl(cluster)
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(repo_root().join("crds").join(CRD_FILE)),
        None,
    )?;
    // Not `kubectl wait`: it fails instead of waiting while the new CRD has no conditions yet.
    test_fixtures::eventually(
        "the CRD to be Established",
        Duration::from_secs(60),
        || async {
            let status = run(
                kubectl(cluster).args([
                    "get",
                    "crd/beermeetupplatforms.beermeetup.io",
                    "-o",
                    r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#,
                ]),
                None,
            )?;
            ensure!(status.trim() == "True", "Established={status}");
            Ok(())
        },
    )
    .await
}

// ---- offline checks ---------------------------------------------------------------------------

#[test]
fn chart_crds_are_a_copy_of_the_committed_crds() {
    let root = repo_root();
    let source = root.join("crds").join(CRD_FILE);
    let copy = chart_dir().join("crds").join(CRD_FILE);
    let a = std::fs::read_to_string(&source).expect("crds/beermeetupplatforms.yaml");
    let b = std::fs::read_to_string(&copy).unwrap_or_default();
    assert!(
        a == b,
        "{CHART}/crds/{CRD_FILE} differs from crds/{CRD_FILE}; refresh it with\n  \
         cp crds/{CRD_FILE} {CHART}/crds/{CRD_FILE}"
    );
    let names: Vec<_> = std::fs::read_dir(chart_dir().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![CRD_FILE.to_string()],
        "the chart ships exactly the committed CRDs"
    );
}

#[test]
fn helm_lint_is_clean() {
    let variants: &[&[&str]] = &[
        &[],
        &["clusterWide=true"],
        &[
            "watchNamespaces={team-a,team-b}",
            "rbac.ingressClasses=true",
            "metrics.serviceMonitor.enabled=true",
            "podDisruptionBudget.enabled=true",
            "replicaCount=2",
        ],
    ];
    for sets in variants {
        let mut cmd = helm();
        cmd.args(["lint", "--strict", "--kube-version", KUBE_VERSION])
            .arg(chart_dir());
        for s in *sets {
            cmd.args(["--set", s]);
        }
        let out = run(&mut cmd, None).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(out.contains("0 chart(s) failed"), "{out}");
        assert!(!out.contains("[WARNING]"), "{out}");
    }
}

#[test]
fn values_schema_rejects_wrong_values() {
    for bad in [
        "replicaCount=-1",
        "logFormat=xml",
        "watchNamespaces={Not_A_Namespace}",
        "clusterWide=sometimes",
        "image.pullPolicy=Sometimes",
        "unknownKey=1",
    ] {
        let err = helm_template("t", "beer-meetup-system", &[bad]).expect_err(&format!(
            "--set {bad} should be rejected by values.schema.json"
        ));
        assert!(
            format!("{err:#}").contains("schema"),
            "--set {bad}: expected a schema error, got {err:#}"
        );
    }
}

/// The objects of a rendered chart, by kind.
fn rendered(sets: &[&str]) -> Vec<Value> {
    let yaml = helm_template("rel", "beer-meetup-system", sets).unwrap_or_else(|e| panic!("{e:#}"));
    yaml_documents(&yaml)
        .unwrap()
        .into_iter()
        .map(|d| serde_json::to_value(d).unwrap())
        .collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

#[test]
fn operator_pod_is_hardened() {
    let objects = rendered(&[]);
    let deployments = of_kind(&objects, "Deployment");
    assert_eq!(deployments.len(), 1);
    let pod = &deployments[0]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["serviceAccountName"], "rel-beer-meetup-operator");
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["args"][0], "run");
    let image = c["image"].as_str().unwrap();
    assert!(
        image.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))),
        "the default image tag is the operator's version: {image}"
    );
    // The metrics Service points at the port the probes use.
    let services = of_kind(&objects, "Service");
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["spec"]["ports"][0]["targetPort"], "metrics");
}

#[test]
fn images_match_the_operator_defaults() {
    use beer_meetup_operator::images;
    // The chart's operator image sits next to the API server and web images the operator runs by
    // default, with the same version (the chart's appVersion).
    let objects = rendered(&[]);
    let image =
        of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_owned();
    let prefix = images::API_SERVER_REPOSITORY
        .strip_suffix("/api-server")
        .expect("API server repository ends with /api-server");
    assert_eq!(
        image,
        format!("{prefix}/operator:{}", images::PLATFORM_VERSION)
    );
    assert_eq!(images::WEB_REPOSITORY, format!("{prefix}/web"));
    let chart: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap())
            .unwrap();
    assert_eq!(chart["appVersion"].as_str(), Some(images::PLATFORM_VERSION));
    // The Dockerfiles build (and their usage line tags) exactly those images.
    for (dockerfile, expected) in [
        ("operator/Dockerfile", image.clone()),
        ("api-server/Dockerfile", images::default_api_server_image()),
    ] {
        let text = std::fs::read_to_string(repo_root().join(dockerfile)).unwrap();
        // The context is a small staged folder holding the binary (scripts/images.sh).
        assert!(
            text.contains(&format!("docker build -f {dockerfile} -t {expected} ")),
            "{dockerfile} should show `docker build -f {dockerfile} -t {expected} <context>`"
        );
        assert!(text.contains("USER 65532"), "{dockerfile} runs as non-root");
    }
    assert!(
        repo_root().join("web/Dockerfile").exists(),
        "web/Dockerfile builds {}",
        images::default_web_image()
    );
}

/// Every (apiGroup, resource, verb) a set of RBAC rules grants.
fn grants(rules: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in rules.as_array().into_iter().flatten() {
        for g in rule["apiGroups"].as_array().into_iter().flatten() {
            for r in rule["resources"].as_array().into_iter().flatten() {
                for v in rule["verbs"].as_array().into_iter().flatten() {
                    out.insert((
                        g.as_str().unwrap().to_owned(),
                        r.as_str().unwrap().to_owned(),
                        v.as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn rbac_is_least_privilege_in_both_modes() {
    // The default is namespaced: the operator watches its own namespace, nothing cluster-wide.
    let objects = rendered(&[]);
    assert!(of_kind(&objects, "ClusterRole").is_empty());
    assert!(of_kind(&objects, "ClusterRoleBinding").is_empty());
    let roles = of_kind(&objects, "Role");
    assert_eq!(
        roles.len(),
        2,
        "the operator's Role and the leader-election Role"
    );
    assert!(
        roles
            .iter()
            .all(|r| r["metadata"]["namespace"] == "beer-meetup-system")
    );
    let args =
        &of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .contains(&Value::from("--namespace=beer-meetup-system")),
        "{args}"
    );
    // Cluster-wide only together with a namespace list is refused, not silently one of them.
    let both = helm_template(
        "rel",
        "beer-meetup-system",
        &["clusterWide=true", "watchNamespaces={team-a}"],
    )
    .expect_err("clusterWide with watchNamespaces is ambiguous");
    assert!(
        format!("{both:#}").contains("leave watchNamespaces empty"),
        "{both:#}"
    );

    // Cluster-wide mode (opt-in): one ClusterRole for the operator, the Lease Role in its own
    // namespace.
    let objects = rendered(&["clusterWide=true"]);
    let cluster_roles = of_kind(&objects, "ClusterRole");
    assert_eq!(cluster_roles.len(), 1, "{cluster_roles:#?}");
    let g = grants(&cluster_roles[0]["rules"]);
    for (group, resource, verb) in &g {
        assert!(
            group != "*" && verb != "*" && resource != "*",
            "no wildcards: {group}/{resource} {verb}"
        );
        assert!(
            !["escalate", "bind", "impersonate"].contains(&verb.as_str()),
            "no RBAC escalation verbs: {group}/{resource} {verb}"
        );
        assert!(
            !(resource == "secrets" && verb == "deletecollection"),
            "no bulk secret deletion"
        );
    }
    for needed in [
        ("beermeetup.io", "beermeetupplatforms", "watch"),
        ("beermeetup.io", "beermeetupplatforms/status", "patch"),
        ("apps", "statefulsets", "patch"),
        ("apps", "deployments", "delete"),
        ("", "secrets", "create"),
        ("batch", "jobs", "create"),
        ("", "persistentvolumeclaims", "list"),
        ("events.k8s.io", "events", "create"),
    ] {
        let needed = (needed.0.into(), needed.1.into(), needed.2.into());
        assert!(g.contains(&needed), "the operator needs {needed:?}");
    }
    // Nothing the upstream ingress controller needed: the platform's HAProxy has no Kubernetes
    // identity, so nothing is granted onwards for it.
    for (group, resource, verb) in &g {
        assert!(
            ![
                "ingressclasses",
                "clusterroles",
                "clusterrolebindings",
                "namespaces",
                "nodes",
                "endpointslices",
                "ingresses/status",
            ]
            .contains(&resource.as_str())
                && !group.ends_with(".haproxy.org"),
            "not needed any more: {group}/{resource} {verb}"
        );
    }
    let roles = of_kind(&objects, "Role");
    assert_eq!(roles.len(), 1, "only the leader-election Role");
    assert_eq!(roles[0]["metadata"]["namespace"], "beer-meetup-system");
    assert!(
        grants(&roles[0]["rules"])
            .iter()
            .all(|(g, r, _)| g == "coordination.k8s.io" && r == "leases")
    );

    // Namespaced mode: a Role + RoleBinding per watched namespace, nothing cluster-wide.
    let objects = rendered(&["watchNamespaces={team-a,team-b}"]);
    assert!(of_kind(&objects, "ClusterRole").is_empty());
    assert!(of_kind(&objects, "ClusterRoleBinding").is_empty());
    let roles = of_kind(&objects, "Role");
    let namespaces: BTreeSet<_> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(
        namespaces,
        BTreeSet::from(["team-a", "team-b", "beer-meetup-system"])
    );
    assert_eq!(of_kind(&objects, "RoleBinding").len(), 3);
    let args =
        &of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"];
    let args: Vec<&str> = args
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"--namespace=team-a") && args.contains(&"--namespace=team-b"),
        "{args:?}"
    );

    // The deprecated `rbac.ingressClasses` of older values files is accepted and grants nothing.
    for sets in [
        &["rbac.ingressClasses=true", "watchNamespaces={team-a}"][..],
        &["rbac.ingressClasses=true"][..],
        &["rbac.ingressClasses=true", "clusterWide=true"][..],
    ] {
        let objects = rendered(sets);
        let expected_cluster_roles = usize::from(sets.contains(&"clusterWide=true"));
        assert_eq!(
            of_kind(&objects, "ClusterRole").len(),
            expected_cluster_roles,
            "{sets:?}"
        );
        assert_eq!(
            of_kind(&objects, "ClusterRoleBinding").len(),
            expected_cluster_roles,
            "{sets:?}"
        );
    }
}

// ---- on the local control plane ----------------------------------------------------------------

/// Applies YAML with `kubectl apply --dry-run=server`: admission, schema and CEL validation run,
/// nothing is stored.
/// `namespace` is for objects without one; `helm template` sets it on every namespaced object.
fn server_dry_run(cluster: &TestCluster, namespace: Option<&str>, yaml: &str) -> Result<String> {
    let mut cmd = kubectl(cluster);
    cmd.args(["apply", "--dry-run=server", "-f", "-"]);
    if let Some(ns) = namespace {
        cmd.args(["-n", ns]);
    }
    run(&mut cmd, Some(yaml.as_bytes()))
}

#[tokio::test(flavor = "multi_thread")]
async fn rendered_chart_passes_server_side_dry_run() {
    let cluster = TestCluster::shared().await;
    install_crd(cluster).await.unwrap();
    let release_ns = cluster.create_namespace("chart-dry").await;
    let watched = cluster.create_namespace("chart-dry-watched").await;
    for sets in [
        vec![],
        vec![
            format!("watchNamespaces={{{watched}}}"),
            "rbac.ingressClasses=true".to_string(),
            "podDisruptionBudget.enabled=true".to_string(),
        ],
    ] {
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        let yaml = helm_template("dry", &release_ns, &sets).unwrap();
        let out = server_dry_run(cluster, None, &yaml).unwrap_or_else(|e| {
            panic!("helm template {sets:?} | kubectl apply --dry-run=server: {e:#}")
        });
        assert!(
            out.contains("deployment.apps/dry-beer-meetup-operator created (server dry run)"),
            "{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn examples_pass_server_side_validation() {
    let cluster = TestCluster::shared().await;
    install_crd(cluster).await.unwrap();
    let ns = cluster.create_namespace("examples-dry").await;
    let files = examples();
    assert!(
        files.iter().any(|f| f.ends_with("minimal.yaml")),
        "examples/minimal.yaml exists"
    );
    for file in files {
        let name = example_name(&file).unwrap();
        let yaml = std::fs::read_to_string(&file).unwrap();
        let out = server_dry_run(cluster, Some(&ns), &yaml)
            .unwrap_or_else(|e| panic!("{} is not valid against the CRD: {e:#}", file.display()));
        assert!(
            out.contains(&format!("beermeetupplatform.beermeetup.io/{name} created")),
            "{out}"
        );
        // Server-side validation also rejects unknown fields (instead of dropping them silently).
        let out = run(
            kubectl(cluster).args([
                "apply",
                "--dry-run=server",
                "--validate=strict",
                "-n",
                &ns,
                "-f",
                "-",
            ]),
            Some(yaml.as_bytes()),
        );
        if let Err(e) = out {
            panic!("{} has fields the CRD does not know: {e:#}", file.display());
        }
    }
}

// ---- helm install → operator under the chart's RBAC → every example Ready → helm uninstall ----

/// The operator process, stopped (and its log printed on failure) when dropped.
struct OperatorProcess {
    child: Child,
    log: PathBuf,
}

impl OperatorProcess {
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("the operator exited ({status}):\n{}", self.log_tail(40));
        }
        Ok(())
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds the operator binary (a no-op when `cargo test --workspace` already did) and returns it;
/// `BEER_MEETUP_OPERATOR_BIN` names a prebuilt one instead.
fn operator_binary() -> Result<PathBuf> {
    workspace_binary(
        "beer-meetup-operator",
        "beer-meetup-operator",
        "BEER_MEETUP_OPERATOR_BIN",
    )
}

/// A kubeconfig for the cluster whose only credential is `token`.
fn kubeconfig_with_token(admin_kubeconfig: &Path, token: &str, out: &Path) -> Result<()> {
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(admin_kubeconfig)?)?;
    let users = config["users"]
        .as_sequence_mut()
        .context("kubeconfig users")?;
    for user in users.iter_mut() {
        let mut creds = serde_yaml::Mapping::new();
        creds.insert("token".into(), token.into());
        user["user"] = serde_yaml::Value::Mapping(creds);
    }
    std::fs::write(out, serde_yaml::to_string(&config)?)?;
    Ok(())
}

/// One HTTP/1.0 GET on loopback; returns (status code, body).
fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("HTTP status line")?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// Runs the operator like the chart's pod would: the Deployment's args and env, the
/// ServiceAccount's token, and the metrics/health port moved to a free loopback port.
fn start_operator_like_the_pod(
    binary: &Path,
    deployment: &Value,
    namespace: &str,
    kubeconfig: &Path,
    work: &Path,
) -> Result<(OperatorProcess, u16)> {
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let port = free_port();
    let container_port = container["ports"][0]["containerPort"]
        .as_u64()
        .context("containerPort")?;
    let mut args: Vec<String> = Vec::new();
    for a in container["args"].as_array().context("args")? {
        let a = a.as_str().context("string arg")?;
        // The pod listens on 0.0.0.0:<containerPort>; here that port may be taken.
        args.push(a.replace(
            &format!("0.0.0.0:{container_port}"),
            &format!("127.0.0.1:{port}"),
        ));
    }
    ensure!(
        args.iter()
            .any(|a| a.contains(&format!("127.0.0.1:{port}"))),
        "the chart passes the metrics address as an argument: {args:?}"
    );
    let pod_name = format!(
        "{}-local",
        deployment["metadata"]["name"]
            .as_str()
            .unwrap_or("operator")
    );
    let log = work.join("operator.log");
    let log_file = std::fs::File::create(&log)?;
    let mut cmd = Command::new(binary);
    cmd.args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().context("env name")?;
        if let Some(v) = e["value"].as_str() {
            cmd.env(name, v);
        } else if let Some(field) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            let v = match field {
                "metadata.name" => pod_name.clone(),
                "metadata.namespace" => namespace.to_owned(),
                "spec.serviceAccountName" => {
                    deployment["spec"]["template"]["spec"]["serviceAccountName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                }
                other => bail!("the test does not know fieldRef {other}"),
            };
            cmd.env(name, v);
        }
    }
    eprintln!("[helm] starting {} {}", binary.display(), args.join(" "));
    let child = cmd.spawn().context("starting the operator")?;
    Ok((OperatorProcess { child, log }, port))
}

/// One `helm install` of the chart with the operator running under its ServiceAccount.
struct Installed {
    release: String,
    namespace: String,
    operator: OperatorProcess,
    port: u16,
    work: PathBuf,
    install_time: Duration,
}

/// `helm install --wait` from the repository, a token of the chart's ServiceAccount (TokenRequest
/// API), and the operator started like the pod and healthy.
async fn install_and_start(
    cluster: &TestCluster,
    binary: &Path,
    release: &str,
    sets: &[String],
) -> Installed {
    let kubeconfig = cluster.kubeconfig_path().to_owned();
    let namespace = cluster.create_namespace(&format!("{release}-system")).await;
    let work = std::env::temp_dir().join(format!("beer-meetup-helm-{namespace}"));
    std::fs::create_dir_all(&work).unwrap();

    let started = Instant::now();
    let mut install = helm();
    install
        .args(["install", release])
        .arg(chart_dir())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--namespace", &namespace, "--wait", "--timeout", "180s"]);
    for s in sets {
        install.args(["--set", s]);
    }
    let output = run(&mut install, None).unwrap_or_else(|e| panic!("helm install {sets:?}: {e:#}"));
    // NOTES.txt tells the next steps of the README's quick start.
    for step in [
        "kubectl apply",
        "-f examples/minimal.yaml",
        "kubectl wait",
        "--for=condition=Ready bmp/minimal",
    ] {
        assert!(
            output.contains(step),
            "helm install's notes lack {step:?}:\n{output}"
        );
    }
    let install_time = started.elapsed();
    eprintln!(
        "[helm] {release}: helm install --wait took {:.1}s",
        install_time.as_secs_f64()
    );
    let deployment: Value = serde_json::from_str(
        &run(
            kubectl(cluster).args([
                "get",
                "deployment",
                "-n",
                &namespace,
                &fullname(release),
                "-o",
                "json",
            ]),
            None,
        )
        .unwrap(),
    )
    .unwrap();
    let sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap()
        .to_owned();

    // A token of the chart's ServiceAccount: the operator gets exactly the chart's RBAC.
    let token = run(
        kubectl(cluster).args(["create", "token", &sa, "-n", &namespace, "--duration=2h"]),
        None,
    )
    .unwrap();
    let sa_kubeconfig = work.join("operator.kubeconfig");
    kubeconfig_with_token(&kubeconfig, token.trim(), &sa_kubeconfig).unwrap();
    let whoami = run(
        Command::new(tool("kubectl"))
            .arg("--kubeconfig")
            .arg(&sa_kubeconfig)
            .args([
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ]),
        None,
    )
    .unwrap();
    assert_eq!(whoami, format!("system:serviceaccount:{namespace}:{sa}"));

    let (mut operator, port) =
        start_operator_like_the_pod(binary, &deployment, &namespace, &sa_kubeconfig, &work)
            .unwrap();
    let healthy =
        test_fixtures::eventually("the operator's /healthz", Duration::from_secs(60), || {
            let r = http_get(port, "/healthz");
            async move {
                let (code, _) = r?;
                ensure!(code == 200, "/healthz answered {code}");
                Ok(())
            }
        })
        .await;
    if let Err(e) = healthy {
        operator.ensure_running().unwrap();
        panic!("{e:#}\n{}", operator.log_tail(40));
    }
    eprintln!(
        "[helm] {release}: operator healthy {:.1}s after helm install started",
        started.elapsed().as_secs_f64()
    );
    Installed {
        release: release.to_owned(),
        namespace,
        operator,
        port,
        work,
        install_time,
    }
}

/// The Secrets an example expects the user to have made (its comments say how): a certificate for
/// `spec.ingress.tls`, an object-storage config for `spec.thanos.objectStorageSecret`.
fn prerequisites(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let doc = serde_json::to_value(yaml_documents(&text).unwrap().remove(0)).unwrap();
    let spec = &doc["spec"];
    let mut secrets = Vec::new();
    if let Some(name) = spec["ingress"]["tls"]["secretName"].as_str() {
        // The API server checks that both keys exist, not what they hold; kwok runs no HAProxy.
        secrets.push(format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: kubernetes.io/tls\n\
             data: {{tls.crt: Y2VydA==, tls.key: a2V5}}\n"
        ));
    }
    let objstore = &spec["thanos"]["objectStorageSecret"];
    if let (Some(name), Some(key)) = (objstore["name"].as_str(), objstore["key"].as_str()) {
        secrets.push(format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\n\
             stringData:\n  {key}: |\n    type: FILESYSTEM\n    config:\n      directory: /tmp/thanos\n"
        ));
    }
    secrets
}

/// Applies an example into `ns` and waits for Ready; returns how long it took.
fn apply_and_wait_ready(
    cluster: &TestCluster,
    installed: &mut Installed,
    file: &Path,
    ns: &str,
) -> Duration {
    let name = example_name(file).unwrap();
    for secret in prerequisites(file) {
        run(
            kubectl(cluster).args(["apply", "-n", ns, "-f", "-"]),
            Some(secret.as_bytes()),
        )
        .unwrap();
    }
    let t = Instant::now();
    run(
        kubectl(cluster).args(["apply", "-n", ns, "-f"]).arg(file),
        None,
    )
    .unwrap();
    let wait = run_raw(
        kubectl(cluster).args([
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            &format!("bmp/{name}"),
            &format!("--timeout={}s", READY_TIMEOUT.as_secs()),
        ]),
        None,
    )
    .unwrap();
    if !wait.status.success() {
        installed.operator.ensure_running().unwrap();
        let describe = run_raw(
            kubectl(cluster).args(["describe", "bmp", "-n", ns, &name]),
            None,
        )
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
        panic!(
            "{} did not become Ready within {READY_TIMEOUT:?}:\n{}\n--- kubectl describe bmp\n{describe}\n--- operator log\n{}",
            file.display(),
            String::from_utf8_lossy(&wait.stderr),
            installed.operator.log_tail(60)
        );
    }
    t.elapsed()
}

/// Stops the operator, checks it was never denied anything and held the chart's Lease, then
/// `helm uninstall` and checks that none of the chart's objects are left.
fn uninstall_and_check_clean(cluster: &TestCluster, installed: Installed) {
    let Installed {
        release,
        namespace,
        mut operator,
        work,
        ..
    } = installed;
    operator.ensure_running().unwrap();
    let holder = run(
        kubectl(cluster).args([
            "get",
            "lease",
            "-n",
            &namespace,
            &fullname(&release),
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]),
        None,
    )
    .unwrap();
    assert_eq!(
        holder,
        format!("{}-local", fullname(&release)),
        "the operator holds the chart's Lease"
    );
    let log = std::fs::read_to_string(&operator.log).unwrap_or_default();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the chart's RBAC denied the operator something:\n{}",
        log.lines()
            .filter(|l| l.to_lowercase().contains("forbidden"))
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(operator);

    let started = Instant::now();
    run(
        helm()
            .args(["uninstall", &release, "--wait", "--timeout", "120s"])
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig_path())
            .args(["--namespace", &namespace]),
        None,
    )
    .unwrap_or_else(|e| panic!("helm uninstall: {e:#}"));
    eprintln!(
        "[helm] {release}: helm uninstall --wait took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let selector = format!("app.kubernetes.io/instance={release}");
    let left = run(
        kubectl(cluster).args([
            "get",
            "deployments,services,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,configmaps,secrets,leases,poddisruptionbudgets",
            "-A",
            "-l",
            &selector,
            "-o",
            "name",
        ]),
        None,
    )
    .unwrap();
    assert!(
        left.trim().is_empty(),
        "left behind by helm uninstall:\n{left}"
    );
    let in_namespace = run(
        kubectl(cluster).args([
            "get",
            "deployments,services,roles,rolebindings,leases,configmaps",
            "-n",
            &namespace,
            "-o",
            "name",
        ]),
        None,
    )
    .unwrap();
    // kube-root-ca.crt is published into every namespace by Kubernetes itself.
    let in_namespace: Vec<&str> = in_namespace
        .lines()
        .filter(|l| *l != "configmap/kube-root-ca.crt")
        .collect();
    assert!(
        in_namespace.is_empty(),
        "left behind in the release namespace: {in_namespace:?}"
    );
    let helm_secrets = run(
        kubectl(cluster).args([
            "get",
            "secrets",
            "-n",
            &namespace,
            "-l",
            "owner=helm",
            "-o",
            "name",
        ]),
        None,
    )
    .unwrap();
    assert!(
        helm_secrets.trim().is_empty(),
        "helm release records left: {helm_secrets}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// Both modes run in one test, one after the other: an operator watching every namespace would
/// also reconcile the namespaced-mode test's platforms.
#[tokio::test(flavor = "multi_thread")]
async fn helm_install_runs_the_operator_with_chart_rbac_and_examples_become_ready() {
    let cluster = TestCluster::shared().await;
    let binary = tokio::task::spawn_blocking(operator_binary)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("building the operator: {e:#}"));

    // Cluster-wide mode (opt-in): every example, each in a namespace of its own.
    let mut installed = install_and_start(
        cluster,
        &binary,
        "beer-meetup-operator",
        &["clusterWide=true".to_owned()],
    )
    .await;
    let mut timings = Vec::new();
    let mut platforms = Vec::new();
    for file in examples() {
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        let ns = cluster.create_namespace(&format!("ex-{stem}")).await;
        let took = apply_and_wait_ready(cluster, &mut installed, &file, &ns);
        eprintln!(
            "[helm] examples/{stem}.yaml Ready in {:.1}s",
            took.as_secs_f64()
        );
        timings.push((stem, took));
        platforms.push((ns, example_name(&file).unwrap()));
    }
    let (code, metrics) = http_get(installed.port, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("beer_meetup_operator"),
        "/metrics:\n{metrics}"
    );
    let cluster_install = installed.install_time;
    uninstall_and_check_clean(cluster, installed);
    for (ns, name) in &platforms {
        // The platforms are the user's; delete them as a user would, so the next operator starts
        // from a clean cluster.
        let _ = run(
            kubectl(cluster).args(["delete", "bmp", "-n", ns, name, "--wait=false"]),
            None,
        );
    }

    // Namespaced mode: a platform in the watched namespace becomes Ready; one elsewhere is not
    // touched, and the ServiceAccount has no rights there.
    let watched = cluster.create_namespace("watched").await;
    let other = cluster.create_namespace("unwatched").await;
    let mut installed = install_and_start(
        cluster,
        &binary,
        "bmn",
        &[
            format!("watchNamespaces={{{watched}}}"),
            "rbac.ingressClasses=true".to_owned(),
        ],
    )
    .await;
    let minimal = repo_root().join("examples/minimal.yaml");
    let took = apply_and_wait_ready(cluster, &mut installed, &minimal, &watched);
    eprintln!(
        "[helm] namespaced mode: examples/minimal.yaml Ready in {:.1}s",
        took.as_secs_f64()
    );
    // A platform with its own HAProxy needs nothing cluster-wide: Ready in namespaced mode, and
    // the deprecated createIngressClass makes no IngressClass.
    let class = format!("haproxy-{watched}");
    let with_class = installed.work.join("ingress-class.yaml");
    std::fs::write(
        &with_class,
        format!(
            "apiVersion: beermeetup.io/v1alpha1\nkind: BeerMeetupPlatform\n\
             metadata: {{name: with-class}}\n\
             spec:\n  ingress:\n    enabled: true\n    host: meetups.example.org\n    \
             className: {class}\n    controller: {{createIngressClass: true}}\n"
        ),
    )
    .unwrap();
    let took = apply_and_wait_ready(cluster, &mut installed, &with_class, &watched);
    eprintln!(
        "[helm] namespaced mode: a platform with its own HAProxy Ready in {:.1}s",
        took.as_secs_f64()
    );
    assert!(
        run(kubectl(cluster).args(["get", "ingressclass", &class]), None).is_err(),
        "the operator created IngressClass {class}"
    );
    let _ = run(
        kubectl(cluster).args([
            "delete",
            "bmp",
            "-n",
            &watched,
            "with-class",
            "--wait=false",
        ]),
        None,
    );

    run(
        kubectl(cluster)
            .args(["apply", "-n", &other, "-f"])
            .arg(&minimal),
        None,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = run(
        kubectl(cluster).args([
            "get",
            "bmp",
            "-n",
            &other,
            "minimal",
            "-o",
            "jsonpath={.status}",
        ]),
        None,
    )
    .unwrap();
    assert!(
        status.trim().is_empty(),
        "an unwatched namespace was reconciled: {status}"
    );
    let sa = format!(
        "system:serviceaccount:{}:bmn-beer-meetup-operator",
        installed.namespace
    );
    for (ns, expected) in [(&watched, "yes"), (&other, "no")] {
        let out = run_raw(
            kubectl(cluster).args([
                "auth",
                "can-i",
                "create",
                "statefulsets.apps",
                "-n",
                ns,
                "--as",
                &sa,
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            expected,
            "can-i create statefulsets in {ns}"
        );
    }
    let out = run_raw(
        kubectl(cluster).args([
            "auth",
            "can-i",
            "list",
            "secrets",
            "--all-namespaces",
            "--as",
            &sa,
        ]),
        None,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no",
        "namespaced mode grants nothing cluster-wide"
    );
    uninstall_and_check_clean(cluster, installed);

    eprintln!(
        "[helm] summary: helm install --wait {:.1}s",
        cluster_install.as_secs_f64()
    );
    for (stem, took) in &timings {
        eprintln!(
            "[helm] summary: examples/{stem}.yaml Ready in {:.1}s",
            took.as_secs_f64()
        );
    }
}
