//! The committed CRD must be what the code generates; `make crds` refreshes it.

use std::path::Path;

#[test]
fn committed_crd_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/beermeetupplatforms.yaml");
    let committed = std::fs::read_to_string(&path).expect("crds/beermeetupplatforms.yaml exists");
    let generated = beer_meetup_operator::crd::crd_yaml().expect("CRD serializes");
    assert!(
        committed == generated,
        "crds/beermeetupplatforms.yaml is stale; run `make crds` and commit the result"
    );
}

#[test]
fn examples_render() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut rendered = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let input = std::fs::read_to_string(&path).expect("readable example");
        let out = beer_meetup_operator::render::render(&input)
            .unwrap_or_else(|e| panic!("{} does not render: {e}", path.display()));
        assert!(out.contains("kind: StatefulSet"), "{}", path.display());
        rendered += 1;
    }
    assert!(rendered >= 1, "examples/minimal.yaml at least");
}

#[test]
fn everything_example_shows_every_option() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/everything.yaml");
    let input = std::fs::read_to_string(&path).expect("examples/everything.yaml exists");
    let out = beer_meetup_operator::render::render(&input).expect("renders");
    for needle in [
        "kind: NetworkPolicy\n",
        "kind: Role\n",
        "name: everything-haproxy\n",
        "name: everything-elasticsearch\n",
        "name: everything-prometheus\n",
        "name: everything-thanos-query\n",
        "name: everything-redis-sentinel\n",
        "haproxy.cfg: |",
        "store http_req_rate(",
        "timeout tunnel ",
    ] {
        assert!(out.contains(needle), "everything.yaml renders {needle:?}");
    }
}
