//! Reads the multi-document YAML a user would `kubectl apply` (standalone mode): AIProvider,
//! AIModel, AIRoutingPolicy, AIBudget and `v1/Secret` documents from one file or a directory.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde::de::DeserializeOwned;

use crate::{validate, AIBudget, AIModel, AIProvider, AIRoutingPolicy};

/// The objects of one namespace, as read from manifests.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    /// AIProvider documents.
    pub providers: Vec<AIProvider>,
    /// AIModel documents.
    pub models: Vec<AIModel>,
    /// AIRoutingPolicy documents.
    pub policies: Vec<AIRoutingPolicy>,
    /// AIBudget documents.
    pub budgets: Vec<AIBudget>,
    /// Secret documents.
    pub secrets: Vec<Secret>,
    /// Documents skipped because they belong to another namespace or kind.
    pub skipped: Vec<String>,
}

/// A manifest that cannot be loaded; the whole load is rejected.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A document is not valid YAML, or does not fit its kind's schema.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line where the document (or the error, when known) is.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Everything wrong with one load.
#[derive(Debug)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("; "))
    }
}

impl std::error::Error for LoadErrors {}

/// The files a config path stands for: the file itself, or the `.yaml`, `.yml` and `.json`
/// files of a directory (recursively, in name order, hidden entries skipped).
pub fn files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !path.is_dir() {
        std::fs::metadata(path).map_err(io)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        let hidden = entry
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if entry.is_dir() {
            out.extend(files(&entry)?);
        } else if entry
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Loads every document under `path` that belongs to `namespace` (documents without a
/// namespace belong to `default`).
pub fn load(path: &Path, namespace: &str) -> Result<Manifests, LoadErrors> {
    let mut manifests = Manifests::default();
    let mut errors = Vec::new();
    for file in files(path).map_err(|e| LoadErrors(vec![e]))? {
        match std::fs::read_to_string(&file) {
            Ok(text) => parse(&text, &file, namespace, &mut manifests, &mut errors),
            Err(source) => errors.push(LoadError::Io { path: file, source }),
        }
    }
    if errors.is_empty() {
        Ok(manifests)
    } else {
        Err(LoadErrors(errors))
    }
}

/// Parses one file's documents into `out`, collecting every error.
pub fn parse(
    text: &str,
    path: &Path,
    namespace: &str,
    out: &mut Manifests,
    errors: &mut Vec<LoadError>,
) {
    for (start, doc) in documents(text) {
        let invalid = |line: usize, message: String| LoadError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        };
        let value: serde_yaml::Value = match serde_yaml::from_str(doc) {
            Ok(v) => v,
            Err(e) => {
                let line = start + e.location().map_or(0, |l| l.line().saturating_sub(1));
                errors.push(invalid(line, format!("not valid YAML: {e}")));
                continue;
            }
        };
        if value.is_null() {
            continue;
        }
        let api_version = value
            .get("apiVersion")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let kind = value
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let doc_ns = value
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(|v| v.as_str())
            .unwrap_or("default");
        let result = match (api_version, kind) {
            ("switchyard.dev/v1alpha1", "AIProvider") => typed::<AIProvider>(doc, start)
                .and_then(|o| check(&o, validate::provider(&o.spec), start, kind).map(|_| o))
                .map(|o| keep(doc_ns, namespace, o, &mut out.providers, &mut out.skipped)),
            ("switchyard.dev/v1alpha1", "AIModel") => typed::<AIModel>(doc, start)
                .and_then(|o| check(&o, validate::model(&o.spec), start, kind).map(|_| o))
                .map(|o| keep(doc_ns, namespace, o, &mut out.models, &mut out.skipped)),
            ("switchyard.dev/v1alpha1", "AIRoutingPolicy") => typed::<AIRoutingPolicy>(doc, start)
                .and_then(|o| check(&o, validate::policy(&o.spec), start, kind).map(|_| o))
                .map(|o| keep(doc_ns, namespace, o, &mut out.policies, &mut out.skipped)),
            ("switchyard.dev/v1alpha1", "AIBudget") => typed::<AIBudget>(doc, start)
                .and_then(|o| check(&o, validate::budget(&o.spec), start, kind).map(|_| o))
                .map(|o| keep(doc_ns, namespace, o, &mut out.budgets, &mut out.skipped)),
            ("v1", "Secret") => typed::<Secret>(doc, start)
                .map(|o| keep(doc_ns, namespace, o, &mut out.secrets, &mut out.skipped)),
            ("switchyard.dev/v1alpha1", other) => Err((
                start,
                format!("unknown kind {other:?} in switchyard.dev/v1alpha1"),
            )),
            (v, _) if v.starts_with("switchyard.dev/") => Err((
                start,
                format!("unsupported apiVersion {v:?}; use switchyard.dev/v1alpha1"),
            )),
            ("", _) | (_, "") => Err((start, "document has no apiVersion or kind".to_string())),
            (v, k) => {
                out.skipped.push(format!("{k} ({v})"));
                Ok(())
            }
        };
        if let Err((line, message)) = result {
            errors.push(invalid(line, message));
        }
    }
}

/// A document as `T`; a field `T` does not have is an error naming it, as the API server's
/// strict field validation (kubectl's default) makes it: a misspelt `rateLimits` must not
/// silently leave a policy without its limit.
fn typed<T: DeserializeOwned>(doc: &str, start: usize) -> Result<T, (usize, String)> {
    let mut unknown = Vec::new();
    let value = serde_ignored::deserialize(serde_yaml::Deserializer::from_str(doc), |path| {
        unknown.push(field_path(&path.to_string()))
    })
    .map_err(|e: serde_yaml::Error| {
        let line = start + e.location().map_or(0, |l| l.line().saturating_sub(1));
        (line, e.to_string())
    })?;
    // `apiVersion` and `kind` were read already; `status` is the server's to write (a
    // manifest copied from `kubectl get -o yaml` has it).
    unknown.retain(|p| {
        !matches!(p.as_str(), "apiVersion" | "kind" | "status") && !p.starts_with("status.")
    });
    match unknown.first() {
        None => Ok(value),
        Some(path) => {
            let key = path.rsplit(['.', ']']).next().unwrap_or(path);
            let needle = format!("{key}:");
            let line = doc
                .lines()
                .position(|l| l.contains(&needle))
                .map_or(start, |i| start + i);
            Err((line, format!("unknown field {path:?}")))
        }
    }
}

/// A path as serde_ignored prints it (`spec.backends.0.?.x`) in the schema's notation
/// (`spec.backends[0].x`).
fn field_path(ignored: &str) -> String {
    let mut out = String::new();
    for part in ignored.split('.').filter(|p| *p != "?") {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

fn check<K: ResourceExt>(
    obj: &K,
    errors: Vec<validate::FieldError>,
    start: usize,
    kind: &str,
) -> Result<(), (usize, String)> {
    if errors.is_empty() {
        return Ok(());
    }
    let what: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    Err((
        start,
        format!("{kind} {}: {}", obj.name_any(), what.join("; ")),
    ))
}

fn keep<K: ResourceExt>(
    doc_ns: &str,
    namespace: &str,
    obj: K,
    into: &mut Vec<K>,
    skipped: &mut Vec<String>,
) {
    if doc_ns == namespace {
        into.push(obj);
    } else {
        skipped.push(format!("{} (namespace {doc_ns})", obj.name_any()));
    }
}

/// Splits a multi-document YAML text at `---` lines, giving each document's first line (1-based).
fn documents(text: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start_byte = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.starts_with("---") {
            docs.push((start_line, &text[start_byte..offset]));
            start_byte = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start_byte..]));
    docs
}
