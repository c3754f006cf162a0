//! Writes the generated CRD YAML into `crds/manifests/` and the Helm chart's `crds/` (without
//! CEL rules) and `crds/manifests/cel/` (with them), or the portable set into the one
//! directory given.

#![cfg_attr(not(test), deny(clippy::too_many_lines))]

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let portable = switchyard_crds::crd_manifests;
    let dirs = match std::env::args().nth(1) {
        Some(dir) => vec![(PathBuf::from(dir), portable as fn() -> _)],
        None => vec![
            (root.join("manifests"), portable as fn() -> _),
            (root.join("../charts/switchyard/crds"), portable),
            (
                root.join("manifests/cel"),
                switchyard_crds::crd_manifests_with_cel,
            ),
        ],
    };
    for (dir, manifests) in dirs {
        std::fs::create_dir_all(&dir)?;
        for (name, yaml) in manifests() {
            std::fs::write(dir.join(name), &yaml)?;
            println!("wrote {}", dir.join(name).display());
        }
    }
    Ok(())
}
