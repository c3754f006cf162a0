//! Writes the generated CRD YAML into `crds/manifests/` (or the directory given).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests"));
    std::fs::create_dir_all(&dir)?;
    for (name, yaml) in switchyard_crds::crd_manifests() {
        std::fs::write(dir.join(name), yaml)?;
        println!("wrote {}", dir.join(name).display());
    }
    Ok(())
}
