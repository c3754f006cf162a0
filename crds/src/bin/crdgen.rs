//! Writes the generated CRD YAML into `crds/manifests/` and the Helm chart's `crds/`
//! (or into the one directory given).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dirs = match std::env::args().nth(1) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![
            root.join("manifests"),
            root.join("../charts/switchyard/crds"),
        ],
    };
    for dir in dirs {
        std::fs::create_dir_all(&dir)?;
        for (name, yaml) in switchyard_crds::crd_manifests() {
            std::fs::write(dir.join(name), &yaml)?;
            println!("wrote {}", dir.join(name).display());
        }
    }
    Ok(())
}
