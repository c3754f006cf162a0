//! JSON Schema cut down to the subset Gemini's `Schema` accepts (function parameters and
//! `responseSchema`): `$ref`s inlined, type arrays turned into `nullable`, `const` into
//! `enum`, unknown keywords dropped.

use serde_json::{json, Map, Value};

/// Keys of JSON Schema that Gemini's `Schema` accepts; everything else is dropped.
const SCHEMA_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// Rewrites a JSON Schema into the subset Gemini accepts: `$ref`s inlined, type arrays
/// turned into `nullable`, `const` into `enum`, unknown keywords dropped.
pub fn sanitize(schema: &Value) -> Value {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .cloned()
        .unwrap_or(Value::Null);
    walk(schema, &defs, 0)
}

fn walk(schema: &Value, defs: &Value, depth: usize) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    if depth > 16 {
        return json!({"type": "object"});
    }
    if let Some(r) = map.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        return match defs.get(name) {
            Some(target) => walk(target, defs, depth + 1),
            None => json!({"type": "object"}),
        };
    }
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "type" => match v {
                Value::Array(types) => {
                    let non_null: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
                    if non_null.len() < types.len() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    if let Some(t) = non_null.first() {
                        out.insert("type".into(), (*t).clone());
                    }
                }
                _ => {
                    out.insert("type".into(), v.clone());
                }
            },
            "const" => {
                out.insert("enum".into(), json!([v]));
            }
            "properties" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, s)| (name.clone(), walk(s, defs, depth + 1)))
                    .collect();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" => {
                out.insert(k.clone(), walk(v, defs, depth + 1));
            }
            "anyOf" | "oneOf" => {
                let options: Vec<Value> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| walk(s, defs, depth + 1))
                    .collect();
                out.insert("anyOf".into(), Value::Array(options));
            }
            key if SCHEMA_KEYS.contains(&key) => {
                out.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}
