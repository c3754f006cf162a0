//! The committed CRD YAML (crds/manifests and the Helm chart's crds/) must equal what the
//! Rust types generate.

#![allow(clippy::unwrap_used)]

#[test]
fn committed_crd_yaml_matches_the_types() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [
        root.join("manifests"),
        root.join("../charts/switchyard/crds"),
    ] {
        for (name, generated) in switchyard_crds::crd_manifests() {
            let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
            assert!(
                committed == generated,
                "{} is stale: run `cargo run -p switchyard-crds --bin crdgen`",
                dir.join(name).display()
            );
        }
    }
}
