//! The commands docs/operator.md documents for the CRDs, run with kubectl against the real API server in
//! `KUBECONFIG` (the local v1.20 control plane of `scripts/k8s/start.sh`, or any cluster):
//! client-side and server-side apply of `crds/manifests/`, and the printer columns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

fn kubectl() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("kubectl"))
            .find(|k| k.exists())
    });
    on_path.expect("kubectl on PATH (scripts/k8s/start.sh puts it there)")
}

/// Runs kubectl with `args` (and `stdin`), failing the test with its output if it fails.
fn run(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(kubectl())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn the_documented_crd_commands_work_and_printer_columns_show_values() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG must point at a cluster: see README (scripts/test starts a local one)"
    );
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/manifests");
    let manifests = manifests.to_str().unwrap();
    // docs/operator.md's install step, then its upgrade step.
    run(&["apply", "-f", manifests], None);
    run(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            manifests,
        ],
        None,
    );
    for crd in ["aimodels", "aiproviders", "airoutingpolicies"] {
        run(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=30s",
                &format!("crd/{crd}.switchyard.dev"),
            ],
            None,
        );
    }
    let ns = "sy-kubectl";
    run(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
        )),
    );
    let objects = format!(
        "apiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {{name: two, namespace: {ns}}}\n\
         spec: {{backends: [{{provider: openai, model: gpt-4o}}, {{provider: anthropic, model: claude}}]}}\n\
         ---\napiVersion: switchyard.dev/v1alpha1\nkind: AIProvider\nmetadata: {{name: openai, namespace: {ns}}}\n\
         spec: {{type: openai, baseUrl: 'https://example.test/v1', credentials: {{env: OPENAI_API_KEY}}}}\n"
    );
    run(&["apply", "--server-side", "-f", "-"], Some(&objects));
    // Every spec column shows its value (a column whose JSONPath the server cannot evaluate,
    // such as `.length()`, would print empty).
    let table = run(&["get", "aip", "-n", ns, "-o", "wide"], None);
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("TYPE") && header.contains("BASE URL"),
        "{table}"
    );
    assert!(
        table.contains("openai   https://example.test/v1"),
        "{table}"
    );
    let table = run(&["get", "aim", "-n", ns, "-o", "wide"], None);
    assert!(table.lines().nth(1).unwrap().starts_with("two "), "{table}");
    // The generated CRDs use only JSONPath the API server evaluates.
    for file in std::fs::read_dir(manifests).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains("jsonPath:")) {
            assert!(!line.contains("()"), "not JSONPath: {line}");
        }
    }
}
