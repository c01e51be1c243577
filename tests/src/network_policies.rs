//! The NetworkPolicy enforcer of the real node: kube-network-policies, as a DaemonSet.
//!
//! The real node's CNI bridge enforces no NetworkPolicy, so the end-to-end test deploys
//! kube-network-policies (`tests/images/kube-network-policies`, built by `scripts/images.sh`). Its
//! v0.8.0 binary only reads the in-cluster config, so it runs as a pod: on the host network (it
//! programs the node's nftables, table `inet kube-network-policies`, and judges new connections
//! through nfqueue), privileged, with a ServiceAccount that may watch what its informers list.
//! scripts/test-deps.sh builds it with the x_tables NFQUEUE target in place of the nftables `queue`
//! expression, which kernels without CONFIG_NFT_QUEUE (the test machines') refuse.

use serde_json::{Value, json};
use test_fixtures::node::REAL_NODE_LABEL;

/// The image `scripts/images.sh kube-network-policies` builds and tags.
pub const ENFORCER_IMAGE: &str = "docker.io/beermeetup-test/kube-network-policies:0.8.0";
/// Namespace of the enforcer; also the name of its ServiceAccount, ClusterRole(Binding) and DaemonSet.
pub const ENFORCER_NAMESPACE: &str = "kube-network-policies";
/// Name of the DaemonSet (and of its RBAC objects).
pub const ENFORCER_NAME: &str = "kube-network-policies";
/// The nftables table the enforcer creates (`nft list tables` prints `inet kube-network-policies`);
/// the real node's cleanup deletes it.
pub const ENFORCER_NFT_TABLE: &str = "inet kube-network-policies";
/// Its metrics port, on the node's loopback only (hostNetwork: the default `:9080` would listen on
/// every address of the machine and collide with whatever else uses 9080 there).
pub const ENFORCER_METRICS_PORT: u16 = 19_080;

/// A `v1` List with everything the enforcer needs: its Namespace, ServiceAccount, ClusterRole and
/// binding, and the DaemonSet running `image` on the real node only. Apply it with
/// `kubectl apply --server-side -f -`.
pub fn enforcer_manifests(image: &str) -> Value {
    let labels = json!({ "app.kubernetes.io/name": ENFORCER_NAME });
    let metrics_address = format!("127.0.0.1:{ENFORCER_METRICS_PORT}");
    let (label, value) = REAL_NODE_LABEL;
    let node_selector = json!({ label: value });
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": { "name": ENFORCER_NAMESPACE },
            },
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": { "name": ENFORCER_NAME, "namespace": ENFORCER_NAMESPACE },
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": { "name": ENFORCER_NAME },
                "rules": [
                    // The informers of cmd/main.go without the (alpha, off) AdminNetworkPolicy APIs,
                    // which would add nodes and the policy.networking.k8s.io resources.
                    { "apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["list", "watch"] },
                    {
                        "apiGroups": ["networking.k8s.io"],
                        "resources": ["networkpolicies"],
                        "verbs": ["list", "watch"],
                    },
                    // Its event recorder (otherwise it logs a refusal for every event).
                    { "apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"] },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": { "name": ENFORCER_NAME },
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": ENFORCER_NAME,
                },
                "subjects": [{
                    "kind": "ServiceAccount",
                    "name": ENFORCER_NAME,
                    "namespace": ENFORCER_NAMESPACE,
                }],
            },
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": { "name": ENFORCER_NAME, "namespace": ENFORCER_NAMESPACE, "labels": labels },
                "spec": {
                    "selector": { "matchLabels": labels },
                    "template": {
                        "metadata": { "labels": labels },
                        "spec": {
                            "serviceAccountName": ENFORCER_NAME,
                            "hostNetwork": true,
                            "nodeSelector": node_selector,
                            // Runs whatever taints the node gets (a drain's cordon included).
                            "tolerations": [{ "operator": "Exists" }],
                            "containers": [{
                                "name": ENFORCER_NAME,
                                "image": image,
                                // The test imports the image into the node's containerd.
                                "imagePullPolicy": "IfNotPresent",
                                "args": [
                                    "--hostname-override=$(NODE_NAME)",
                                    // No NRI socket in the test's containerd: pod IPs come from the
                                    // API server only. (v0.8.0 parses but ignores the flag; its
                                    // NRI client then just logs that it cannot connect.)
                                    "--disable-nri",
                                    format!("--metrics-bind-address={metrics_address}"),
                                    // When the pod is gone (teardown kills it with SIGTERM, which
                                    // it does not handle, so its table stays until the node's
                                    // cleanup), queued packets pass instead of being dropped.
                                    "--fail-open",
                                ],
                                "env": [{
                                    "name": "NODE_NAME",
                                    "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } },
                                }],
                                "securityContext": { "privileged": true },
                                // Ready once it serves its metrics (the kubelet probes from the host).
                                "readinessProbe": {
                                    "httpGet": {
                                        "host": "127.0.0.1",
                                        "port": ENFORCER_METRICS_PORT,
                                        "path": "/metrics",
                                    },
                                    "periodSeconds": 2,
                                },
                                "resources": { "requests": { "cpu": "50m", "memory": "50Mi" } },
                            }],
                        },
                    },
                },
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item<'a>(list: &'a Value, kind: &str) -> &'a Value {
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in the list"))
    }

    #[test]
    fn enforcer_list_runs_the_image_privileged_on_the_real_node_under_its_own_account() {
        let list = enforcer_manifests(ENFORCER_IMAGE);
        assert_eq!(list["kind"], "List");
        let kinds: Vec<&str> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["kind"].as_str().expect("kind"))
            .collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "DaemonSet"
            ]
        );

        let daemon_set = item(&list, "DaemonSet");
        let pod = &daemon_set["spec"]["template"]["spec"];
        assert_eq!(
            daemon_set["spec"]["selector"]["matchLabels"],
            daemon_set["spec"]["template"]["metadata"]["labels"]
        );
        assert_eq!(pod["hostNetwork"], true);
        assert_eq!(pod["nodeSelector"]["beermeetup.test/real-node"], "true");
        assert_eq!(pod["tolerations"], json!([{ "operator": "Exists" }]));
        let container = &pod["containers"][0];
        assert_eq!(container["image"], ENFORCER_IMAGE);
        assert_eq!(container["securityContext"]["privileged"], true);
        let args: Vec<&str> = container["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("arg"))
            .collect();
        assert!(
            args.contains(&"--hostname-override=$(NODE_NAME)"),
            "{args:?}"
        );
        assert!(args.contains(&"--disable-nri"), "{args:?}");
        assert!(
            args.contains(&"--metrics-bind-address=127.0.0.1:19080"),
            "{args:?}"
        );
        assert_eq!(
            container["env"][0],
            json!({ "name": "NODE_NAME", "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } } })
        );

        // The pod's account is the one bound to the role.
        let account = item(&list, "ServiceAccount");
        let binding = item(&list, "ClusterRoleBinding");
        assert_eq!(pod["serviceAccountName"], account["metadata"]["name"]);
        assert_eq!(binding["subjects"][0]["name"], account["metadata"]["name"]);
        assert_eq!(
            binding["subjects"][0]["namespace"],
            account["metadata"]["namespace"]
        );
        assert_eq!(
            binding["roleRef"]["name"],
            item(&list, "ClusterRole")["metadata"]["name"]
        );
        assert_eq!(
            account["metadata"]["namespace"],
            item(&list, "Namespace")["metadata"]["name"]
        );
        assert_eq!(daemon_set["metadata"]["namespace"], ENFORCER_NAMESPACE);
    }

    #[test]
    fn enforcer_role_lets_its_informers_list_and_watch() {
        let list = enforcer_manifests(ENFORCER_IMAGE);
        let rules = item(&list, "ClusterRole")["rules"]
            .as_array()
            .expect("rules");
        for (group, resource) in [
            ("", "pods"),
            ("", "namespaces"),
            ("networking.k8s.io", "networkpolicies"),
        ] {
            for verb in ["list", "watch"] {
                let allowed = rules.iter().any(|r| {
                    r["apiGroups"]
                        .as_array()
                        .is_some_and(|g| g.contains(&json!(group)))
                        && r["resources"]
                            .as_array()
                            .is_some_and(|g| g.contains(&json!(resource)))
                        && r["verbs"]
                            .as_array()
                            .is_some_and(|v| v.contains(&json!(verb)))
                });
                assert!(
                    allowed,
                    "the role cannot {verb} {resource} in group '{group}'"
                );
            }
        }
    }
}
