//! The batch schema (`schema/batch.schema.json`) for tests: a draft 2020-12 validator built by
//! the `jsonschema` crate, and YAML read into JSON (yaml-rust2) so that YAML batches can be
//! validated as editors validate them.
#![allow(dead_code)]

use serde_json::Value;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

/// The schema file as JSON.
pub fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/batch.schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A validator for the schema, explicitly as draft 2020-12.
pub fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&schema()).expect("the schema compiles as draft 2020-12")
}

/// What the schema has against `batch`, one line per error (empty: valid).
pub fn errors(validator: &jsonschema::Validator, batch: &Value) -> Vec<String> {
    validator.iter_errors(batch).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

/// A YAML document (JSON is YAML too) as JSON; an empty document is `null`.
pub fn yaml_to_json(text: &str) -> Value {
    let docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}): {text}"));
    assert!(docs.len() <= 1, "one document expected: {text}");
    docs.first().map_or(Value::Null, convert)
}

fn convert(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(text.clone()), Value::Number),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(convert).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match k {
                    Yaml::String(key) => (key.clone(), convert(v)),
                    other => panic!("a key that is not a string: {other:?}"),
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::BadValue => panic!("no aliases or bad values in a test batch: {yaml:?}"),
    }
}

/// Replaces each `${NAME}` of `text` with its value, as `envsubst` would; every placeholder
/// must have one.
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut filled = text.to_string();
    for (name, value) in values {
        filled = filled.replace(&format!("${{{name}}}"), value);
    }
    let left: Vec<&str> =
        filled.lines().filter(|l| !l.trim_start().starts_with('#') && l.contains("${")).collect();
    assert!(left.is_empty(), "placeholders left: {left:?}");
    filled
}

/// The placeholders (`${NAME}`) outside comments of an example batch, in order of appearance.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            let end = rest[start..].find('}').expect("a closed placeholder") + start;
            let name = rest[start + 2..end].to_string();
            if !names.contains(&name) {
                names.push(name);
            }
            rest = &rest[end + 1..];
        }
    }
    names
}
