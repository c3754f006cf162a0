//! AIProviders compiled: checked, their keys resolved, as the sidecar gets them.

use super::*;

pub(super) fn compile_providers(
    inputs: &Inputs<'_>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, proxy::Provider> {
    let mut out = BTreeMap::new();
    for p in inputs.providers {
        match checked_key(inputs, p) {
            Ok(api_key) => {
                out.insert(p.name_any(), provider(inputs, &p.spec, api_key));
            }
            Err(found) => problems.extend(found),
        }
    }
    out
}

/// A provider's key (if it names one), or what keeps the provider from compiling.
fn checked_key(inputs: &Inputs<'_>, p: &AIProvider) -> Result<Option<SecretString>, Vec<Problem>> {
    let name = p.name_any();
    let spec = &p.spec;
    let invalid = validate::provider(spec);
    if !invalid.is_empty() {
        return Err(invalid
            .into_iter()
            .map(|e| problem("AIProvider", &name, e.field, Reason::InvalidSpec, e.message))
            .collect());
    }
    if spec.type_ == ProviderType::Bedrock {
        return Err(vec![problem(
            "AIProvider",
            &name,
            "spec.type",
            Reason::InvalidSpec,
            "type bedrock is not supported yet; use openai, azure-openai, anthropic, gemini or mock".into(),
        )]);
    }
    if let Some(e) = invalid_header(&spec.headers) {
        return Err(vec![problem(
            "AIProvider",
            &name,
            e.0,
            Reason::InvalidSpec,
            e.1,
        )]);
    }
    resolve_key(inputs, p).map_err(|p| vec![p])
}

/// A valid provider as the sidecar gets it.
fn provider(
    inputs: &Inputs<'_>,
    spec: &crate::AIProviderSpec,
    api_key: Option<SecretString>,
) -> proxy::Provider {
    let base_url = spec
        .base_url
        .as_deref()
        .or(spec.type_.default_base_url())
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    proxy::Provider {
        type_: spec.type_,
        base_url,
        api_key_env: match (&api_key, &spec.credentials) {
            (None, Some(c)) => c.env.clone(),
            _ => None,
        },
        api_key,
        headers: spec.headers.clone(),
        azure_api_version: spec.azure.as_ref().map(|a| a.api_version.clone()),
        connect_timeout: spec
            .timeouts
            .as_ref()
            .and_then(|t| t.connect)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        mock: (spec.type_ == ProviderType::Mock).then(|| spec.mock.clone().unwrap_or_default()),
        limits: spec.limits.as_ref().map(|l| proxy::Limits {
            requests_per_minute: l.requests_per_minute,
            tokens_per_minute: l.tokens_per_minute,
        }),
        pods: if spec.limits.is_some() {
            pods_selected(inputs, None)
        } else {
            0
        },
        api: spec.api.unwrap_or_default(),
    }
}

fn invalid_header(headers: &BTreeMap<String, String>) -> Option<(String, String)> {
    headers.iter().find_map(|(k, v)| {
        let name_ok = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        let value_ok = v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        (!name_ok || !value_ok).then(|| {
            (
                format!("spec.headers.{k}"),
                "not a valid HTTP header name and value".into(),
            )
        })
    })
}

fn resolve_key(inputs: &Inputs<'_>, p: &AIProvider) -> Result<Option<SecretString>, Problem> {
    let name = p.name_any();
    let Some(creds) = &p.spec.credentials else {
        return Ok(None);
    };
    if let Some(var) = &creds.env {
        let Some(lookup) = inputs.env else {
            return Ok(None);
        };
        return match lookup(var).filter(|v| !v.trim().is_empty()) {
            Some(v) => Ok(Some(SecretString::new(v.trim()))),
            None => Err(problem(
                "AIProvider",
                &name,
                "spec.credentials.env",
                Reason::EnvNotSet,
                format!("environment variable {var} is not set in the sidecar"),
            )),
        };
    }
    let Some(r) = &creds.secret_ref else {
        return Ok(None);
    };
    let field = "spec.credentials.secretRef";
    let Some(secret) = inputs.secrets.iter().find(|s| s.name_any() == r.name) else {
        let msg = format!(
            "secret {:?} not found in namespace {}",
            r.name, inputs.namespace
        );
        return Err(problem(
            "AIProvider",
            &name,
            field,
            Reason::SecretNotFound,
            msg,
        ));
    };
    let value = secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(&r.key).cloned())
        .or_else(|| {
            let bytes = secret.data.as_ref()?.get(&r.key)?;
            String::from_utf8(bytes.0.clone()).ok()
        });
    match value.filter(|v| !v.trim().is_empty()) {
        Some(v) => Ok(Some(SecretString::new(v.trim()))),
        None => Err(problem(
            "AIProvider",
            &name,
            format!("{field}.key"),
            Reason::SecretKeyMissing,
            format!("secret {:?} has no non-empty key {:?}", r.name, r.key),
        )),
    }
}
