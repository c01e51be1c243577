//! End to end on a real node: the project's images built from its Dockerfiles (no Docker daemon),
//! `helm install` of the chart (the operator runs as a pod under the chart's RBAC), a platform like
//! `examples/production.yaml` adapted to one node, whose pods really run, and real Chromium voting
//! through the HAProxy ingress on 127.0.0.1.
//!
//! MongoDB: no registry reachable here serves a mongod (no image, no Debian package), so FerretDB
//! runs as a pod and the platform uses it through `spec.mongodb.external`.
//!
//! Needs root (kubelet, containerd, iptables), buildah and the tools of `make test-deps`. `make e2e`
//! runs this test alone. Each step says what failed; on failure the pods, events and the logs of
//! every pod in the test's namespaces are printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use beer_meetup_tests::network_policies::{ENFORCER_NAME, ENFORCER_NAMESPACE, enforcer_manifests};
use beer_meetup_tests::{repo_root, run, tool};
use serde_json::{Value, json};
use test_fixtures::node::REAL_NODE_LABEL;
use test_fixtures::{ClusterOptions, TestCluster, free_port};

const OPERATOR_NAMESPACE: &str = "beer-meetup-system";
const DATA_NAMESPACE: &str = "ferretdb";
const FRIENDS_NAMESPACE: &str = "friends";
const PLATFORM: &str = "friends";
const HOST: &str = "meetups.test";

/// Every image, with the debug binaries this test run built, so the images hold the code under
/// test; returns the folder of the OCI archives.
fn build_images() -> Result<PathBuf> {
    let started = Instant::now();
    let out = test_fixtures::build_images("debug", &[])?;
    eprintln!(
        "[e2e] images ready in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

struct Kube<'a> {
    cluster: &'a TestCluster,
}

impl Kube<'_> {
    fn kubectl(&self, args: &[&str]) -> Result<String> {
        let mut command = self.cluster.kubectl()?;
        command.args(args);
        run(&mut command, None)
    }

    fn apply(&self, namespace: &str, manifest: &Value) -> Result<String> {
        let mut command = self.cluster.kubectl()?;
        command.args(["apply", "--server-side", "-n", namespace, "-f", "-"]);
        run(&mut command, Some(manifest.to_string().as_bytes()))
    }

    fn json(&self, args: &[&str]) -> Result<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        Ok(serde_json::from_str(&self.kubectl(&all)?)?)
    }

    /// Pods, events and the logs of every container in `namespaces`, for failure reports.
    fn diagnostics(&self, namespaces: &[&str]) -> String {
        let mut report = String::new();
        let mut section = |title: &str, args: &[&str]| {
            let text = self
                .kubectl(args)
                .unwrap_or_else(|e| format!("(failed: {e:#})"));
            report.push_str(&format!("\n===== {title} =====\n{text}"));
        };
        section("nodes", &["get", "nodes", "-o", "wide"]);
        section("pods", &["get", "pods", "-A", "-o", "wide"]);
        for namespace in namespaces {
            section(
                &format!("events in {namespace}"),
                &["get", "events", "-n", namespace, "--sort-by=.lastTimestamp"],
            );
            section(
                &format!("platforms in {namespace}"),
                &["get", "bmp", "-n", namespace, "-o", "yaml"],
            );
            let pods = self
                .json(&["get", "pods", "-n", namespace])
                .unwrap_or_default();
            for pod in pods["items"].as_array().into_iter().flatten() {
                let name = pod["metadata"]["name"].as_str().unwrap_or_default();
                section(
                    &format!("logs of {namespace}/{name}"),
                    &[
                        "logs",
                        "-n",
                        namespace,
                        name,
                        "--all-containers",
                        "--tail=40",
                        "--prefix",
                    ],
                );
            }
        }
        report
    }
}

/// Polls `check` every second until it passes or `timeout` ends.
fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<()>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(()) => return Ok(()),
            Err(error) if Instant::now() >= deadline => {
                return Err(
                    error.context(format!("timed out after {timeout:?} waiting for {what}"))
                );
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

fn real_node_selector() -> Value {
    json!({ REAL_NODE_LABEL.0: REAL_NODE_LABEL.1 })
}

fn ferretdb_manifests(image: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": { "name": "ferretdb" },
                "spec": {
                    "selector": { "matchLabels": { "app": "ferretdb" } },
                    "template": {
                        "metadata": { "labels": { "app": "ferretdb" } },
                        "spec": {
                            "nodeSelector": real_node_selector(),
                            "containers": [{
                                "name": "ferretdb",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "args": ["--listen-addr=0.0.0.0:27017", "--sqlite-dir=/data"],
                                "ports": [{ "containerPort": 27017 }],
                                "readinessProbe": { "tcpSocket": { "port": 27017 }, "periodSeconds": 2 },
                                "volumeMounts": [{ "name": "data", "mountPath": "/data" }],
                            }],
                            "volumes": [{ "name": "data", "emptyDir": {} }],
                        },
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": { "name": "ferretdb" },
                "spec": { "selector": { "app": "ferretdb" }, "ports": [{ "port": 27017 }] },
            },
        ],
    })
}

/// The production example adapted to one real node: two API replicas, one web, the platform's own
/// HAProxy ingress (NodePort, reached on 127.0.0.1), replicated Redis with Sentinel, MongoDB from
/// the FerretDB pod, NetworkPolicies on.
fn friends_platform(database: &str) -> Value {
    json!({
        "apiVersion": "beermeetup.io/v1alpha1",
        "kind": "BeerMeetupPlatform",
        "metadata": { "name": PLATFORM },
        "spec": {
            "apiServer": {
                "replicas": 2,
                "logLevel": "info",
                "nodeSelector": real_node_selector(),
                "resources": { "requests": { "cpu": "10m", "memory": "32Mi" }, "limits": { "memory": "256Mi" } },
            },
            "web": {
                "replicas": 1,
                "nodeSelector": real_node_selector(),
                "resources": { "requests": { "cpu": "10m", "memory": "16Mi" }, "limits": { "memory": "64Mi" } },
            },
            "placement": { "separateNodes": false },
            "mongodb": { "external": { "secretName": database, "key": "uri" } },
            "redis": {
                "mode": "replicated",
                "replicas": 2,
                "maxMemory": "64mb",
                "resources": { "requests": { "cpu": "10m", "memory": "16Mi" }, "limits": { "memory": "128Mi" } },
            },
            "ingress": {
                "enabled": true,
                "host": HOST,
                "rateLimit": { "requests": 200, "period": "1s", "statusCode": 429 },
                "controller": {
                    "deploy": true,
                    "replicas": 1,
                    "serviceType": "NodePort",
                    // The platform's own HAProxy (the operator's default image, which the test
                    // image stands in for): configured by the operator, no Kubernetes API access.
                    "tunnelTimeout": "1h",
                },
            },
            "networkPolicies": { "enabled": true },
        },
    })
}

/// A platform without an ingress: the app must work at the web Service (`status.url`).
fn plain_platform(database: &str) -> Value {
    json!({
        "apiVersion": "beermeetup.io/v1alpha1",
        "kind": "BeerMeetupPlatform",
        "metadata": { "name": "plain" },
        "spec": {
            "apiServer": { "replicas": 1, "nodeSelector": real_node_selector() },
            "web": { "replicas": 1, "nodeSelector": real_node_selector() },
            "placement": { "separateNodes": false },
            "mongodb": { "external": { "secretName": database, "key": "uri" } },
            "redis": { "maxMemory": "32mb" },
        },
    })
}

fn mongo_secret(name: &str, database: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name },
        "stringData": {
            "uri": format!("mongodb://ferretdb.{DATA_NAMESPACE}.svc.cluster.local:27017/{database}"),
        },
    })
}

fn condition_true(object: &Value, kind: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

fn pod_names(kube: &Kube, namespace: &str, selector: &str) -> Result<Vec<String>> {
    let pods = kube.json(&["get", "pods", "-n", namespace, "-l", selector])?;
    Ok(pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_runs_for_real_from_helm_install_to_a_live_vote() -> Result<()> {
    let images = build_images()?;
    let mut cluster = TestCluster::start_with(ClusterOptions {
        nodes: 0,
        persistent_volumes: 4,
        real_node: true,
        start_timeout: Duration::from_secs(300),
        ..ClusterOptions::default()
    })
    .await?;
    let outcome = {
        let kube = Kube { cluster: &cluster };
        let result = scenario(&kube, &images).await;
        if let Err(error) = &result {
            eprintln!(
                "[e2e] FAILED: {error:#}\n{}",
                kube.diagnostics(&[
                    OPERATOR_NAMESPACE,
                    DATA_NAMESPACE,
                    FRIENDS_NAMESPACE,
                    "plain"
                ])
            );
        }
        result
    };
    cluster.finish_on_real_node(outcome)
}

async fn scenario(kube: &Kube<'_>, images: &Path) -> Result<()> {
    let node = kube.cluster.real_node().context("no real node")?;
    let started = Instant::now();
    let step = |what: &str| eprintln!("[e2e] {what} at {:.0}s", started.elapsed().as_secs_f64());

    // 1. Images into the node's containerd.
    let refs = image_refs()?;
    for name in refs.keys() {
        node.import_image(&images.join(format!("{name}.oci.tar")))
            .with_context(|| format!("step 1: importing the {name} image"))?;
    }
    step("images imported");

    // 1b. NetworkPolicies enforced on the real node (the CNI bridge enforces none).
    let mut enforcer = kube.cluster.kubectl()?;
    enforcer.args(["apply", "--server-side", "-f", "-"]);
    run(
        &mut enforcer,
        Some(
            enforcer_manifests(&refs["kube-network-policies"])
                .to_string()
                .as_bytes(),
        ),
    )
    .context("step 1b: the NetworkPolicy enforcer")?;
    kube.kubectl(&[
        "rollout",
        "status",
        "-n",
        ENFORCER_NAMESPACE,
        &format!("daemonset/{ENFORCER_NAME}"),
        "--timeout=120s",
    ])
    .context("step 1b: the NetworkPolicy enforcer becomes Ready")?;

    // 2. FerretDB as the MongoDB the platforms use.
    kube.kubectl(&["create", "namespace", DATA_NAMESPACE])?;
    kube.apply(DATA_NAMESPACE, &ferretdb_manifests(&refs["ferretdb"]))
        .context("step 2: FerretDB")?;

    // 3. helm install: the operator runs as a pod from its image, under the chart's RBAC —
    // namespaced, as the README recommends: a Role in each platform namespace, which must exist.
    kube.kubectl(&["create", "namespace", FRIENDS_NAMESPACE])?;
    kube.kubectl(&["create", "namespace", "plain"])?;
    let chart = repo_root().join("charts/beer-meetup-operator");
    let mut helm = Command::new(tool("helm"));
    helm.env("KUBECONFIG", kube.cluster.kubeconfig_path())
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("beer-meetup-helm-home/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("beer-meetup-helm-home/config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("beer-meetup-helm-home/data"),
        )
        .args(["install", "beer-meetup-operator"])
        .arg(&chart)
        .args(["-n", OPERATOR_NAMESPACE, "--create-namespace"])
        .args(["--set", "image.pullPolicy=Never"])
        .args([
            "--set-string",
            &format!(
                "nodeSelector.{}=true",
                REAL_NODE_LABEL.0.replace('.', "\\.")
            ),
        ])
        .args(["--set", "logFormat=json"])
        .args([
            "--set",
            &format!("watchNamespaces={{{FRIENDS_NAMESPACE},plain}}"),
        ])
        .args(["--wait", "--timeout", "180s"]);
    run(&mut helm, None).context("step 3: helm install of the operator chart")?;
    step("operator installed and Available");

    // 4. The platform, adapted from examples/production.yaml.
    kube.apply(FRIENDS_NAMESPACE, &mongo_secret("mongodb", "friends"))?;
    kube.apply(FRIENDS_NAMESPACE, &friends_platform("mongodb"))
        .context("step 4: applying the platform")?;
    wait_for("the platform Ready", Duration::from_secs(300), || {
        let platform = kube.json(&["get", "bmp", PLATFORM, "-n", FRIENDS_NAMESPACE])?;
        ensure!(
            condition_true(&platform, "Ready"),
            "not Ready: {}",
            platform["status"]
        );
        Ok(())
    })
    .context("step 4: the platform becomes Ready (real readiness probes)")?;
    step("platform Ready");

    // 5. The ingress on loopback: kube-proxy serves NodePorts on 127.0.0.1.
    let services = kube.json(&["get", "svc", "-n", FRIENDS_NAMESPACE])?;
    let node_port = services["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["spec"]["type"] == "NodePort")
        .flat_map(|s| s["spec"]["ports"].as_array().cloned().unwrap_or_default())
        .find(|p| p["name"] == "http" || p["port"] == 80)
        .and_then(|p| p["nodePort"].as_u64())
        .context("step 5: no NodePort http port on the ingress controller's Service")?;
    let base = format!("http://{HOST}:{node_port}");
    wait_for(
        "the app through the ingress",
        Duration::from_secs(60),
        || {
            // `/` is the web app, `/api/openapi.json` the API server: both routes of the Ingress.
            for path in ["/", "/api/openapi.json"] {
                let (status, _) = http_get_via_loopback(node_port as u16, HOST, path)?;
                ensure!(status == 200, "GET {path}: status {status}");
            }
            Ok(())
        },
    )
    .context("step 5: the app answers through the ingress on 127.0.0.1")?;
    step("ingress answers on 127.0.0.1");

    // 5b. The ingress balances over both API pods (a pod it never routes to would make the
    // cross-pod live check below a matter of luck).
    wait_for(
        "requests through the ingress on every API pod",
        Duration::from_secs(90),
        || {
            for _ in 0..6 {
                http_get_via_loopback(node_port as u16, HOST, "/api/openapi.json")?;
            }
            let pods = pod_names(kube, FRIENDS_NAMESPACE, "app.kubernetes.io/component=api")?;
            ensure!(pods.len() == 2, "API pods: {pods:?}");
            for pod in &pods {
                let metrics = kube.kubectl(&[
                    "get",
                    "--raw",
                    &format!(
                        "/api/v1/namespaces/{FRIENDS_NAMESPACE}/pods/{pod}:8080/proxy/metrics"
                    ),
                ])?;
                let served: f64 = metrics
                    .lines()
                    .filter(|l| l.starts_with("http_requests_total") && l.contains("openapi"))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum();
                ensure!(served > 0.0, "the ingress sent no request to {pod}");
            }
            Ok(())
        },
    )
    .context("step 5b: the ingress balances over both API pods")?;
    step("the ingress balances over both API pods");

    // 6. Two friends in real Chromium; the script also deletes an API pod and the Redis primary.
    let script = repo_root().join("tests/e2e/friends.mjs");
    let mut browser = Command::new("node");
    browser
        .arg(&script)
        .current_dir(repo_root().join("web"))
        .env("E2E_BASE_URL", &base)
        .env("E2E_HOST_RULE", format!("MAP {HOST} 127.0.0.1"))
        .env("E2E_NAMESPACE", FRIENDS_NAMESPACE)
        .env("E2E_PLATFORM", PLATFORM)
        .env("KUBECONFIG", kube.cluster.kubeconfig_path())
        .env("KUBECTL", tool("kubectl"))
        .env(
            "E2E_ARTIFACTS",
            repo_root().join("tests/artifacts/e2e-platform"),
        );
    run(&mut browser, None).context("step 6: two friends vote live in Chromium")?;
    step("friends voted live across pods, an API pod and the Redis primary were lost");

    // 7. The API's logs are JSON, as the operator configures them.
    let api_pods = pod_names(kube, FRIENDS_NAMESPACE, "app.kubernetes.io/component=api")?;
    let pod = api_pods.first().context("step 7: no API pod")?;
    let logs = kube.kubectl(&["logs", "-n", FRIENDS_NAMESPACE, pod, "--tail=20"])?;
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    ensure!(
        !lines.is_empty(),
        "step 7: the API pod {pod} logged nothing"
    );
    for line in &lines {
        serde_json::from_str::<Value>(line)
            .with_context(|| format!("step 7: an API log line is not JSON: {line}"))?;
    }
    step("API logs are JSON");

    // 7b. NetworkPolicies are enforced: Redis answers the API pod and refuses a stray pod.
    let redis = format!("{PLATFORM}-redis-headless.{FRIENDS_NAMESPACE}.svc.cluster.local");
    let probe = format!("timeout 8 redis-cli -h {redis} -p 6379 ping; echo exit=$?");
    let redis_image = &refs["redis"];
    kube.kubectl(&[
        "debug",
        "-n",
        FRIENDS_NAMESPACE,
        pod,
        "--container=redis-probe",
        "--image",
        redis_image,
        "--image-pull-policy=Never",
        "--",
        "sh",
        "-c",
        &probe,
    ])
    .context("step 7b: an ephemeral probe container in the API pod")?;
    let mut allowed = String::new();
    wait_for("the probe in the API pod", Duration::from_secs(60), || {
        allowed = kube.kubectl(&["logs", "-n", FRIENDS_NAMESPACE, pod, "-c", "redis-probe"])?;
        ensure!(allowed.contains("exit="), "not done: {allowed}");
        Ok(())
    })
    .context("step 7b: probing Redis from the API pod")?;
    ensure!(
        allowed.contains("NOAUTH") || allowed.contains("PONG"),
        "step 7b: Redis did not answer the API pod: {allowed}"
    );
    let stray = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "stray", "labels": { "app": "stray" } },
        "spec": {
            "nodeSelector": real_node_selector(),
            "restartPolicy": "Never",
            "containers": [{
                "name": "probe",
                "image": redis_image,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", probe],
            }],
        },
    });
    kube.apply(FRIENDS_NAMESPACE, &stray)?;
    let mut refused = String::new();
    wait_for("the stray pod's probe", Duration::from_secs(60), || {
        refused = kube.kubectl(&["logs", "-n", FRIENDS_NAMESPACE, "stray"])?;
        ensure!(refused.contains("exit="), "not done: {refused}");
        Ok(())
    })
    .context("step 7b: probing Redis from a stray pod")?;
    ensure!(
        !refused.contains("NOAUTH") && !refused.contains("PONG") && !refused.contains("exit=0"),
        "step 7b: a stray pod reached Redis despite the NetworkPolicies: {refused}"
    );
    kube.kubectl(&[
        "delete",
        "pod",
        "stray",
        "-n",
        FRIENDS_NAMESPACE,
        "--wait=false",
    ])?;
    step("Redis answers the API pod and refuses a stray pod");

    // 8. A platform without an ingress serves a working app at its web Service.
    kube.apply("plain", &mongo_secret("mongodb", "plain"))?;
    kube.apply("plain", &plain_platform("mongodb"))?;
    wait_for("the plain platform Ready", Duration::from_secs(240), || {
        let platform = kube.json(&["get", "bmp", "plain", "-n", "plain"])?;
        ensure!(
            condition_true(&platform, "Ready"),
            "not Ready: {}",
            platform["status"]
        );
        Ok(())
    })
    .context("step 8: the platform without an ingress becomes Ready")?;
    let platform = kube.json(&["get", "bmp", "plain", "-n", "plain"])?;
    let url = platform["status"]["url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let service = url
        .trim_start_matches("http://")
        .split(['.', ':', '/'])
        .next()
        .unwrap_or_default()
        .to_owned();
    ensure!(
        !service.is_empty(),
        "step 8: status.url {url:?} names no Service"
    );
    let (forward, local_port) = port_forward(kube, "plain", &format!("svc/{service}"), 8080)?;
    let created = wait_for_value("a meetup created through the web Service", || {
        http_post_json(
            local_port,
            "/api/v1/meetups",
            &json!({ "title": "Plain pint", "organizerName": "Ann", "timeZone": "Europe/Berlin" }),
        )
    });
    drop(forward);
    let (status, body) =
        created.context("step 8: POST /api/v1/meetups through the web Service's nginx")?;
    ensure!(
        status == 201 || status == 200,
        "step 8: creating a meetup through {url} answered {status}: {body}"
    );
    ensure!(
        serde_json::from_str::<Value>(&body).is_ok(),
        "step 8: the answer through {url} is not the API's JSON: {body}"
    );
    step("the platform without an ingress works at status.url");

    // 9. Uninstall: platforms deleted, helm uninstall, nothing left running.
    kube.kubectl(&[
        "delete",
        "bmp",
        "--all",
        "-n",
        FRIENDS_NAMESPACE,
        "--wait=true",
        "--timeout=120s",
    ])?;
    kube.kubectl(&[
        "delete",
        "bmp",
        "--all",
        "-n",
        "plain",
        "--wait=true",
        "--timeout=120s",
    ])?;
    let mut uninstall = Command::new(tool("helm"));
    uninstall
        .env("KUBECONFIG", kube.cluster.kubeconfig_path())
        .args([
            "uninstall",
            "beer-meetup-operator",
            "-n",
            OPERATOR_NAMESPACE,
            "--wait",
        ]);
    run(&mut uninstall, None).context("step 9: helm uninstall")?;
    wait_for(
        "no pods left in the platform namespaces",
        Duration::from_secs(120),
        || {
            for namespace in [FRIENDS_NAMESPACE, "plain", OPERATOR_NAMESPACE] {
                let left = pod_names(kube, namespace, "!beermeetup.test/none")?;
                ensure!(left.is_empty(), "pods left in {namespace}: {left:?}");
            }
            Ok(())
        },
    )
    .context("step 9: deleting the platforms and uninstalling leaves nothing running")?;
    step("uninstalled, nothing left running");
    Ok(())
}

/// `name → image reference` of every image `scripts/images.sh` builds.
fn image_refs() -> Result<std::collections::BTreeMap<String, String>> {
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("scripts/images.sh"))
        .arg("--list");
    let text = run(&mut command, None)?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(name, reference)| (name.to_owned(), reference.to_owned()))
        .collect())
}

/// `kubectl port-forward` to 127.0.0.1; the child is killed when the guard drops.
struct PortForward(std::process::Child);

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn port_forward(
    kube: &Kube,
    namespace: &str,
    target: &str,
    port: u16,
) -> Result<(PortForward, u16)> {
    let local = free_port();
    let child = kube
        .cluster
        .kubectl()?
        .args([
            "port-forward",
            "-n",
            namespace,
            "--address=127.0.0.1",
            target,
            &format!("{local}:{port}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let guard = PortForward(child);
    wait_for("the port-forward", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", local))?;
        Ok(())
    })?;
    Ok((guard, local))
}

fn wait_for_value<T>(what: &str, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(error) if Instant::now() >= deadline => {
                return Err(error.context(format!("timed out waiting for {what}")));
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

fn http_get_via_loopback(port: u16, host: &str, path: &str) -> Result<(u16, String)> {
    http_request(
        port,
        &format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n"),
    )
}

fn http_post_json(port: u16, path: &str, body: &Value) -> Result<(u16, String)> {
    let body = body.to_string();
    http_request(
        port,
        &format!(
            "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn http_request(port: u16, request: &str) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no HTTP status line in {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    if status >= 500 {
        bail!("HTTP {status}: {body}");
    }
    Ok((status, body))
}
