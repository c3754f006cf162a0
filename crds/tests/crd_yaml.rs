//! The committed CRD YAML (crds/manifests and the Helm chart's crds/) must equal what the
//! Rust types generate.

#![allow(clippy::unwrap_used)]

#[test]
fn committed_crd_yaml_matches_the_types() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let portable = switchyard_crds::crd_manifests();
    let cel = switchyard_crds::crd_manifests_with_cel();
    for (dir, manifests) in [
        (root.join("manifests"), &portable),
        (root.join("../charts/switchyard/crds"), &portable),
        (root.join("manifests/cel"), &cel),
    ] {
        for (name, generated) in manifests.iter() {
            let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            assert!(
                &committed == generated,
                "{} is stale: run `cargo run -p switchyard-crds --bin crdgen`",
                dir.join(name).display()
            );
        }
    }
}

#[test]
fn only_the_cel_set_carries_cel_rules() {
    let count = |set: Vec<(&str, String)>| {
        set.iter()
            .map(|(_, y)| y.matches("x-kubernetes-validations").count())
            .sum::<usize>()
    };
    assert_eq!(count(switchyard_crds::crd_manifests()), 0);
    assert!(count(switchyard_crds::crd_manifests_with_cel()) >= 3);
}
