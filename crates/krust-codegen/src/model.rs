//! The resolved model the emitter works from: types parsed, version strings
//! turned into ranges, inline and common structs collected, defaults parsed,
//! and for every struct the versions at which it can appear.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::schema::{RawField, RawSchema};
use crate::versions::Range;

/// A primitive type of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prim {
    /// `bool`
    Bool,
    /// `int8`
    Int8,
    /// `int16`
    Int16,
    /// `uint16`
    Uint16,
    /// `int32`
    Int32,
    /// `uint32`
    Uint32,
    /// `int64`
    Int64,
    /// `float64`
    Float64,
    /// `string`
    String,
    /// `bytes`
    Bytes,
    /// `uuid`
    Uuid,
    /// `records`: raw record batches.
    Records,
}

/// A field's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// A primitive.
    Prim(Prim),
    /// A struct of the same schema.
    Struct(String),
    /// An array.
    Array(Box<Type>),
}

/// A parsed `default`.
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    /// No default given: the type's own (0, false, "", empty).
    TypeDefault,
    /// `"null"`.
    Null,
    /// An integer (decimal, negative or `0x` hex).
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string literal.
    Str(String),
}

/// A resolved field.
#[derive(Debug, Clone)]
pub struct Field {
    /// Name as in the schema (PascalCase).
    pub name: String,
    /// Rust field name (snake_case, raw identifier if a keyword).
    pub rust_name: String,
    /// Type.
    pub ty: Type,
    /// Versions the field exists in.
    pub versions: Range,
    /// Versions it may be null in.
    pub nullable: Range,
    /// Tag, when the field is tagged (always in all its versions here).
    pub tag: Option<u32>,
    /// Per-field flexible-versions override.
    pub flexible: Option<Range>,
    /// Default value.
    pub default: DefaultValue,
    /// May be dropped at versions lacking it.
    pub ignorable: bool,
    /// Documentation.
    pub about: Option<String>,
    /// Map key in Kafka's Java classes.
    pub map_key: bool,
    /// Entity type, informational.
    pub entity_type: Option<String>,
}

impl Field {
    /// True when the Rust type is an `Option`.
    pub fn is_option(&self) -> bool {
        !self.nullable.is_empty() || self.ty == Type::Prim(Prim::Records)
    }
}

/// A struct: the message itself, an inline struct or a common struct.
#[derive(Debug, Clone)]
pub struct StructDef {
    /// Rust type name.
    pub name: String,
    /// Fields in wire order.
    pub fields: Vec<Field>,
    /// Versions at which this struct can be encoded (hull).
    pub reach: Range,
    /// True for the message's own top-level struct.
    pub top_level: bool,
    /// Documentation of the field that defines it, if any.
    pub about: Option<String>,
}

/// A schema file, resolved.
#[derive(Debug, Clone)]
pub struct Message {
    /// `request`, `response`, `header` or `data`.
    pub kind: String,
    /// Message name.
    pub name: String,
    /// Module (file) name.
    pub module: String,
    /// API key.
    pub api_key: Option<i16>,
    /// Valid versions.
    pub valid: Range,
    /// Flexible versions.
    pub flexible: Range,
    /// Deprecated versions.
    pub deprecated: Option<Range>,
    /// Newest version unstable in Kafka.
    pub unstable: bool,
    /// Structs, the top-level one first.
    pub structs: Vec<StructDef>,
}

/// PascalCase to snake_case (`KRaftVersion` -> `k_raft_version`).
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                None => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) => p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()),
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "box", "break", "const", "continue", "crate", "dyn", "else", "enum",
    "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
    "move", "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "try", "type",
    "unsafe", "use", "where", "while", "yield",
];

/// Names the generated modules import; a struct may not take one of them.
pub const RESERVED_TYPE_NAMES: &[&str] = &[
    "Bytes",
    "BytesMut",
    "BufMut",
    "KString",
    "Uuid",
    "RawTaggedField",
    "Encode",
    "Decode",
    "DecodeError",
    "EncodeError",
    "Message",
    "Request",
    "ApiKey",
    "SampleRng",
    "Option",
    "Vec",
    "Result",
    "Default",
    "Self",
];

fn rust_field_name(name: &str) -> String {
    let s = snake_case(name);
    if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

fn parse_type(t: &str) -> Type {
    if let Some(inner) = t.strip_prefix("[]") {
        return Type::Array(Box::new(parse_type(inner)));
    }
    let p = match t {
        "bool" => Prim::Bool,
        "int8" => Prim::Int8,
        "int16" => Prim::Int16,
        "uint16" => Prim::Uint16,
        "int32" => Prim::Int32,
        "uint32" => Prim::Uint32,
        "int64" => Prim::Int64,
        "float64" => Prim::Float64,
        "string" => Prim::String,
        "bytes" => Prim::Bytes,
        "uuid" => Prim::Uuid,
        "records" => Prim::Records,
        other => return Type::Struct(other.to_string()),
    };
    Type::Prim(p)
}

fn parse_default(v: &Option<Value>, ty: &Type, field: &str) -> Result<DefaultValue, String> {
    let Some(v) = v else {
        return Ok(DefaultValue::TypeDefault);
    };
    let bad = || format!("field {field}: bad default {v}");
    match v {
        Value::Bool(b) => Ok(DefaultValue::Bool(*b)),
        Value::Number(n) => match ty {
            Type::Prim(Prim::Float64) => n.as_f64().map(DefaultValue::Float).ok_or_else(bad),
            _ => n.as_i64().map(DefaultValue::Int).ok_or_else(bad),
        },
        Value::String(s) if s == "null" => Ok(DefaultValue::Null),
        Value::String(s) => match ty {
            Type::Prim(Prim::Bool) => match s.to_ascii_lowercase().as_str() {
                "true" => Ok(DefaultValue::Bool(true)),
                "false" => Ok(DefaultValue::Bool(false)),
                _ => Err(bad()),
            },
            Type::Prim(Prim::String) => Ok(DefaultValue::Str(s.clone())),
            Type::Prim(Prim::Float64) => s.parse().map(DefaultValue::Float).map_err(|_| bad()),
            Type::Prim(
                Prim::Int8 | Prim::Int16 | Prim::Uint16 | Prim::Int32 | Prim::Uint32 | Prim::Int64,
            ) => {
                let (neg, body) = match s.strip_prefix('-') {
                    Some(b) => (true, b),
                    None => (false, s.as_str()),
                };
                let n = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
                    Some(h) => i64::from_str_radix(h, 16),
                    None => body.parse::<i64>(),
                }
                .map_err(|_| bad())?;
                Ok(DefaultValue::Int(if neg { -n } else { n }))
            }
            _ if s.is_empty() => Ok(DefaultValue::TypeDefault),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

struct Builder {
    structs: Vec<StructDef>,
    raw_common: BTreeMap<String, Vec<RawField>>,
}

impl Builder {
    fn fields(&mut self, raw: &[RawField], owner: &str) -> Result<Vec<Field>, String> {
        let mut out = Vec::new();
        for f in raw {
            let ty = parse_type(&f.ty);
            let versions = Range::parse(&f.versions)?;
            let nullable = match &f.nullable_versions {
                Some(s) => Range::parse(s)?,
                None => Range::NONE,
            };
            let tagged = match &f.tagged_versions {
                Some(s) => Range::parse(s)?,
                None => Range::NONE,
            };
            let tag = match &f.tag {
                None => None,
                Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                Some(Value::String(s)) => s.parse::<u32>().ok(),
                Some(_) => None,
            };
            if f.tag.is_some() && tag.is_none() {
                return Err(format!("{owner}.{}: bad tag", f.name));
            }
            if tag.is_some() == tagged.is_empty() {
                return Err(format!(
                    "{owner}.{}: tag and taggedVersions must come together",
                    f.name
                ));
            }
            if !tagged.is_empty() && tagged != versions {
                return Err(format!(
                    "{owner}.{}: taggedVersions differ from versions",
                    f.name
                ));
            }
            let elem = match &ty {
                Type::Array(e) => e.as_ref(),
                t => t,
            };
            if let Type::Struct(name) = elem {
                if RESERVED_TYPE_NAMES.contains(&name.as_str()) {
                    return Err(format!("struct name {name} clashes with an import"));
                }
                if !f.fields.is_empty() {
                    let fields = self.fields(&f.fields, name)?;
                    if self.structs.iter().any(|s| &s.name == name) {
                        return Err(format!("struct {name} defined twice"));
                    }
                    self.structs.push(StructDef {
                        name: name.clone(),
                        fields,
                        reach: Range::NONE,
                        top_level: false,
                        about: f.about.clone(),
                    });
                } else if !self.raw_common.contains_key(name) {
                    return Err(format!("{owner}.{}: unknown struct {name}", f.name));
                }
            } else if !f.fields.is_empty() {
                return Err(format!("{owner}.{}: fields on a non-struct type", f.name));
            }
            out.push(Field {
                name: f.name.clone(),
                rust_name: rust_field_name(&f.name),
                default: parse_default(&f.default, &ty, &f.name)?,
                ty,
                versions,
                nullable,
                tag,
                flexible: f
                    .flexible_versions
                    .as_deref()
                    .map(Range::parse)
                    .transpose()?,
                ignorable: f.ignorable.unwrap_or(false),
                about: f.about.clone(),
                map_key: f.map_key.unwrap_or(false),
                entity_type: f.entity_type.clone(),
            });
        }
        Ok(out)
    }

    /// Widen the reach of `name` by `range`, then of the structs it uses.
    fn reach(&mut self, name: &str, range: Range) {
        let Some(i) = self.structs.iter().position(|s| s.name == name) else {
            return;
        };
        self.structs[i].reach = self.structs[i].reach.hull(range);
        let children: Vec<(String, Range)> = self.structs[i]
            .fields
            .iter()
            .filter_map(|f| {
                let t = match &f.ty {
                    Type::Array(e) => e.as_ref(),
                    t => t,
                };
                match t {
                    Type::Struct(n) => Some((n.clone(), f.versions.intersect(range))),
                    _ => None,
                }
            })
            .collect();
        for (child, r) in children {
            if !r.is_empty() {
                self.reach(&child, r);
            }
        }
    }
}

/// Resolve a raw schema.
pub fn build(raw: &RawSchema) -> Result<Message, String> {
    let valid = Range::parse(&raw.valid_versions)?;
    let flexible = Range::parse(&raw.flexible_versions)?;
    let mut b = Builder {
        structs: Vec::new(),
        raw_common: raw
            .common_structs
            .iter()
            .map(|c| (c.name.clone(), Vec::new()))
            .collect(),
    };
    let top_fields = b.fields(&raw.fields, &raw.name)?;
    b.structs.insert(
        0,
        StructDef {
            name: raw.name.clone(),
            fields: top_fields,
            reach: Range::NONE,
            top_level: true,
            about: None,
        },
    );
    for c in &raw.common_structs {
        if RESERVED_TYPE_NAMES.contains(&c.name.as_str()) {
            return Err(format!("struct name {} clashes with an import", c.name));
        }
        let fields = b.fields(&c.fields, &c.name)?;
        b.structs.push(StructDef {
            name: c.name.clone(),
            fields,
            reach: Range::NONE,
            top_level: false,
            about: None,
        });
    }
    b.reach(&raw.name, valid);
    for s in &mut b.structs {
        if s.reach.is_empty() {
            s.reach = valid;
        }
    }
    Ok(Message {
        kind: raw.kind.clone(),
        name: raw.name.clone(),
        module: snake_case(&raw.name),
        api_key: raw.api_key,
        valid,
        flexible,
        deprecated: raw
            .deprecated_versions
            .as_deref()
            .map(Range::parse)
            .transpose()?,
        unstable: raw.latest_version_unstable.unwrap_or(false),
        structs: b.structs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_kafka_names() {
        assert_eq!(snake_case("ClientId"), "client_id");
        assert_eq!(snake_case("KRaftVersionFeature"), "k_raft_version_feature");
        assert_eq!(snake_case("IsrNodeIds"), "isr_node_ids");
        assert_eq!(rust_field_name("Type"), "r#type");
    }

    #[test]
    fn defaults_parse() {
        let t = Type::Prim(Prim::Int32);
        let d = |s: &str| parse_default(&Some(Value::String(s.into())), &t, "f").unwrap();
        assert_eq!(d("0x7fffffff"), DefaultValue::Int(0x7fff_ffff));
        assert_eq!(d("-2147483648"), DefaultValue::Int(-2_147_483_648));
        assert_eq!(d("null"), DefaultValue::Null);
    }
}
