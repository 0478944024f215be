//! Reading Kafka's JSON message schemas: strip the `//` comments Kafka puts in
//! them, then deserialize into raw structs that mirror the files one to one.

use serde::Deserialize;
use serde_json::Value;

/// One schema file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSchema {
    /// `request`, `response`, `header` or `data` (others are skipped).
    #[serde(rename = "type")]
    pub kind: String,
    /// The message name, e.g. `FetchRequest`.
    pub name: String,
    /// The API key (requests and responses).
    pub api_key: Option<i16>,
    /// e.g. `0-17`.
    pub valid_versions: String,
    /// e.g. `12+` or `none` (absent in the files of APIs Kafka removed,
    /// whose valid versions are `none`).
    #[serde(default = "none")]
    pub flexible_versions: String,
    /// Versions Kafka has deprecated (documented, still encoded).
    pub deprecated_versions: Option<String>,
    /// True when the newest version is still under development in Kafka.
    pub latest_version_unstable: Option<bool>,
    /// Which Kafka processes accept the request (informational).
    pub listeners: Option<Vec<String>>,
    /// The top-level fields.
    #[serde(default)]
    pub fields: Vec<RawField>,
    /// Structs shared by several fields of this schema.
    #[serde(default)]
    pub common_structs: Vec<RawCommonStruct>,
}

fn none() -> String {
    "none".into()
}

/// A struct in `commonStructs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawCommonStruct {
    /// Struct name.
    pub name: String,
    /// Versions (informational: each field carries its own).
    pub versions: String,
    /// The fields.
    pub fields: Vec<RawField>,
}

/// One field as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawField {
    /// Field name in PascalCase.
    pub name: String,
    /// Type: a primitive, `[]T`, or a struct name.
    #[serde(rename = "type")]
    pub ty: String,
    /// Versions the field exists in.
    pub versions: String,
    /// Documentation.
    pub about: Option<String>,
    /// Fields of an inline struct type.
    #[serde(default)]
    pub fields: Vec<RawField>,
    /// Default value (string, bool or number in the JSON).
    pub default: Option<Value>,
    /// Entity kind (topic name, broker id, ...): informational.
    pub entity_type: Option<String>,
    /// May be dropped silently at versions that lack it.
    pub ignorable: Option<bool>,
    /// Versions where the field may be null.
    pub nullable_versions: Option<String>,
    /// The field is the key of a map in Kafka's Java classes.
    pub map_key: Option<bool>,
    /// Versions where the field is a tagged field.
    pub tagged_versions: Option<String>,
    /// The tag, for tagged fields (a number or a string holding one).
    pub tag: Option<Value>,
    /// Kafka's Java code keeps a slice instead of a copy (we always do).
    pub zero_copy: Option<bool>,
    /// Per-field override of the message's flexible versions.
    pub flexible_versions: Option<String>,
}

/// Remove `//` line comments (outside string literals) from JSON text.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '/' && chars.peek() == Some(&'/') {
            for n in chars.by_ref() {
                if n == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

/// Parse one schema file's text. It goes through a `Value` first because
/// some of Kafka's files repeat a key (Jackson keeps the last; so do we).
pub fn parse(text: &str) -> Result<RawSchema, String> {
    let value: Value = serde_json::from_str(&strip_comments(text)).map_err(|e| e.to_string())?;
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_stripped_but_not_inside_strings() {
        let s = "// head\n{\"a\": \"http://x\" // tail\n}";
        assert_eq!(strip_comments(s), "\n{\"a\": \"http://x\" \n}");
    }
}
