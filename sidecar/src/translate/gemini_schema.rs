//! JSON Schema cut down to the subset Gemini's `Schema` accepts (function parameters and
//! `responseSchema`): `$ref`s inlined, type arrays turned into `nullable`, `const` into
//! `enum`, unknown keywords dropped; and the way back, Gemini's schemas (upper-case type
//! names, `nullable`, `propertyOrdering`) as standard JSON Schema for other providers.

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

/// A Gemini schema (`responseSchema`, `responseJsonSchema`, function `parameters`) as
/// standard JSON Schema: `OBJECT` becomes `object`, `nullable: true` a type list with
/// `null`, and Gemini-only `propertyOrdering` is dropped. Property names are left alone.
pub fn to_json_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::with_capacity(map.len());
    for (k, v) in map {
        match k.as_str() {
            "propertyOrdering" | "nullable" => {}
            "type" => {
                let t = match v {
                    Value::String(t) => json!(t.to_ascii_lowercase()),
                    Value::Array(ts) => Value::Array(
                        ts.iter()
                            .map(|t| json!(t.as_str().unwrap_or_default().to_ascii_lowercase()))
                            .collect(),
                    ),
                    other => other.clone(),
                };
                out.insert(k.clone(), t);
            }
            "properties" | "$defs" | "definitions" => {
                let props = v.as_object().map(|m| {
                    m.iter()
                        .map(|(name, s)| (name.clone(), to_json_schema(s)))
                        .collect()
                });
                out.insert(k.clone(), props.map_or_else(|| v.clone(), Value::Object));
            }
            _ => {
                let converted = match v {
                    Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
                    Value::Object(_) => to_json_schema(v),
                    other => other.clone(),
                };
                out.insert(k.clone(), converted);
            }
        }
    }
    if map.get("nullable") == Some(&Value::Bool(true)) {
        if let Some(Value::String(t)) = out.get("type").cloned() {
            out.insert("type".into(), json!([t, "null"]));
        }
    }
    Value::Object(out)
}
