//! The committed CRD YAML must equal what the Rust types generate.

#![allow(clippy::unwrap_used)]

#[test]
fn committed_crd_yaml_matches_the_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    for (name, generated) in switchyard_crds::crd_manifests() {
        let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            committed == generated,
            "crds/manifests/{name} is stale: run `cargo run -p switchyard-crds --bin crdgen`"
        );
    }
}
