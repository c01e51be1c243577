//! NetworkPolicies are enforced on the real node: with kube-network-policies running
//! (`beer_meetup_tests::network_policies`), a Redis pod whose policy admits only `role=client` pods
//! answers a client pod and stays silent to a pod without the label; stopping the node leaves
//! nothing behind (the enforcer's nftables table included).
//!
//! Needs root; builds the images it runs (pause, redis, kube-network-policies) with
//! `scripts/images.sh` (cached). Only one real node runs per machine (kubelet port, cgroups): the
//! fixture waits for a machine-wide lock.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use beer_meetup_tests::network_policies::{
    ENFORCER_IMAGE, ENFORCER_NAME, ENFORCER_NAMESPACE, ENFORCER_NFT_TABLE, enforcer_manifests,
};
use beer_meetup_tests::run;
use serde_json::{Value, json};
use test_fixtures::node::REAL_NODE_LABEL;
use test_fixtures::{ClusterOptions, TestCluster, system_program};

const REDIS_IMAGE: &str = "docker.io/library/redis:7.4";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_policy_admits_labelled_clients_and_refuses_a_stray_pod() -> Result<()> {
    let started = Instant::now();
    let images =
        test_fixtures::build_images("debug", &["pause", "redis", "kube-network-policies"])?;
    let mut cluster = TestCluster::start_with(ClusterOptions {
        nodes: 0,
        persistent_volumes: 0,
        real_node: true,
        ..ClusterOptions::default()
    })
    .await?;
    let node_dir = cluster
        .real_node()
        .context("no real node")?
        .dir()
        .to_owned();
    eprintln!("cluster up after {:?}", started.elapsed());
    // Blocking kubectl calls: keep them off the runtime the cluster's own tasks use.
    let result = tokio::task::block_in_place(|| exercise(&cluster, &images));
    if result.is_err() {
        let enforcer_logs = kubectl(
            &cluster,
            &[
                "logs",
                "-n",
                ENFORCER_NAMESPACE,
                &format!("daemonset/{ENFORCER_NAME}"),
                "--tail=60",
            ],
        );
        eprintln!(
            "--- {ENFORCER_NAME} ---\n{}",
            enforcer_logs.unwrap_or_else(|e| e.to_string())
        );
        let logs = node_dir.join("logs");
        for name in ["kubelet", "containerd", "kube-proxy"] {
            eprintln!(
                "--- {name} ---\n{}",
                tail(&logs.join(format!("{name}.log")), 30)
            );
        }
    }
    let finished = cluster.finish_on_real_node(result);
    eprintln!("whole test: {:?}", started.elapsed());
    finished
}

fn exercise(cluster: &TestCluster, images: &std::path::Path) -> Result<()> {
    let real = cluster.real_node().context("no real node")?;
    for image in ["redis", "kube-network-policies"] {
        real.import_image(&images.join(format!("{image}.oci.tar")))
            .with_context(|| format!("importing the {image} image"))?;
    }

    let step = Instant::now();
    apply(cluster, &enforcer_manifests(ENFORCER_IMAGE))?;
    kubectl(
        cluster,
        &[
            "rollout",
            "status",
            "-n",
            ENFORCER_NAMESPACE,
            &format!("daemonset/{ENFORCER_NAME}"),
            "--timeout=120s",
        ],
    )
    .context("the enforcer DaemonSet did not become ready")?;
    eprintln!("enforcer ready in {:?}", step.elapsed());

    let namespace = "policy";
    let selector = json!({ REAL_NODE_LABEL.0: REAL_NODE_LABEL.1 });
    apply(
        cluster,
        &json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                { "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": namespace } },
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": { "name": "redis", "namespace": namespace, "labels": { "app": "redis" } },
                    "spec": {
                        "nodeSelector": selector,
                        "containers": [{
                            "name": "redis",
                            "image": REDIS_IMAGE,
                            "imagePullPolicy": "Never",
                            "command": ["redis-server", "--port", "6379", "--protected-mode", "no", "--save", ""],
                            "readinessProbe": { "exec": { "command": ["redis-cli", "ping"] }, "periodSeconds": 1 },
                        }],
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": { "name": "redis", "namespace": namespace },
                    "spec": { "selector": { "app": "redis" }, "ports": [{ "port": 6379 }] },
                },
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": { "name": "redis-clients-only", "namespace": namespace },
                    "spec": {
                        "podSelector": { "matchLabels": { "app": "redis" } },
                        "policyTypes": ["Ingress"],
                        "ingress": [{
                            "from": [{ "podSelector": { "matchLabels": { "role": "client" } } }],
                            "ports": [{ "protocol": "TCP", "port": 6379 }],
                        }],
                    },
                },
            ],
        }),
    )?;
    kubectl(
        cluster,
        &[
            "wait",
            "-n",
            namespace,
            "pod/redis",
            "--for=condition=Ready",
            "--timeout=90s",
        ],
    )?;

    // The enforcer programs the node's nftables (the table the node's cleanup removes).
    let tables = run(
        Command::new(system_program("nft")?).args(["list", "tables"]),
        None,
    )?;
    ensure!(
        tables
            .lines()
            .any(|l| l.trim() == format!("table {ENFORCER_NFT_TABLE}")),
        "no nftables table {ENFORCER_NFT_TABLE}; tables:\n{tables}"
    );

    let host = format!("redis.{namespace}.svc.cluster.local");
    // A client retries as any client does: a new pod's first packets may come before kube-proxy
    // has the Service, CoreDNS the name, or the enforcer the pod's labels. The stray pod gets
    // five tries (20 s), and none may pass.
    let ping = |tries: u32| {
        format!(
            "for try in $(seq 1 {tries}); do \
               if timeout 3 redis-cli -h {host} ping | grep -qx PONG; then echo PONG; echo exit=0; exit 0; fi; \
               echo \"try $try failed\"; sleep 1; \
             done; echo exit=1"
        )
    };
    let step = Instant::now();
    let client = pod_output(
        cluster,
        namespace,
        "client",
        json!({ "role": "client" }),
        &ping(20),
    )?;
    eprintln!("client pod done in {:?}: {client}", step.elapsed());
    ensure!(
        client.lines().any(|l| l == "PONG") && client.contains("exit=0"),
        "the role=client pod did not get PONG from {host}:\n{client}"
    );

    let step = Instant::now();
    let stray = pod_output(
        cluster,
        namespace,
        "stray",
        json!({ "role": "stray" }),
        &ping(5),
    )?;
    eprintln!("stray pod done in {:?}: {stray}", step.elapsed());
    ensure!(
        !stray.contains("PONG") && !stray.contains("exit=0"),
        "the stray pod reached Redis despite the NetworkPolicy:\n{stray}"
    );
    Ok(())
}

/// Runs `script` in a Redis-image pod with `labels` on the real node; its log once it has finished.
fn pod_output(
    cluster: &TestCluster,
    namespace: &str,
    name: &str,
    labels: Value,
    script: &str,
) -> Result<String> {
    apply(
        cluster,
        &json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": name, "namespace": namespace, "labels": labels },
            "spec": {
                "nodeSelector": { REAL_NODE_LABEL.0: REAL_NODE_LABEL.1 },
                "restartPolicy": "Never",
                "containers": [{
                    "name": name,
                    "image": REDIS_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", script],
                }],
            },
        }),
    )?;
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let phase = kubectl(
            cluster,
            &[
                "get",
                "-n",
                namespace,
                "pod",
                name,
                "-o",
                "jsonpath={.status.phase}",
            ],
        )?;
        if phase == "Succeeded" || phase == "Failed" {
            break;
        }
        if Instant::now() > deadline {
            bail!("pod {name} still {phase:?} after 150 s");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(kubectl(cluster, &["logs", "-n", namespace, name])?
        .trim()
        .to_owned())
}

fn kubectl(cluster: &TestCluster, args: &[&str]) -> Result<String> {
    run(cluster.kubectl()?.args(args), None)
}

fn apply(cluster: &TestCluster, manifest: &Value) -> Result<()> {
    let text = serde_json::to_vec(manifest)?;
    run(
        cluster
            .kubectl()?
            .args(["apply", "--server-side", "-f", "-"]),
        Some(&text),
    )?;
    Ok(())
}

fn tail(path: &std::path::Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
