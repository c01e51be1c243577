//! `docs/configuration.md` is generated from the committed CRD; this test keeps it in sync.
//! Regenerate with `UPDATE_DOCS=1 cargo test -p beer-meetup-tests --test docs`.

use beer_meetup_tests::config_reference::{REGENERATE, render};
use beer_meetup_tests::repo_root;

#[test]
fn configuration_reference_matches_the_crd() {
    let root = repo_root();
    let crd = std::fs::read_to_string(root.join("crds/beermeetupplatforms.yaml"))
        .expect("crds/beermeetupplatforms.yaml (make crds)");
    let expected = render(&crd).expect("rendering the configuration reference");
    let path = root.join("docs/configuration.md");
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v != "0") {
        std::fs::write(&path, &expected).expect("writing docs/configuration.md");
        eprintln!("rewrote {}", path.display());
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/configuration.md is stale: it no longer matches crds/beermeetupplatforms.yaml.\n\
         Regenerate it with:\n  {REGENERATE}\nand commit the result."
    );
}
