//! The JSON the commands print with `--json` (docs/ARCHITECTURE.md, "The
//! CLI's conventions": one stable object per line). Written by hand, as
//! the record output in `format.rs` is: the objects are small, their field
//! order is part of the contract, and a value type that keeps fields in the
//! order they are given makes that order visible where each object is
//! built.

use std::io::{self, Write};

/// A JSON value whose objects keep their fields in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, fields in this order.
    Object(Vec<(&'static str, Json)>),
}

impl Json {
    /// A string, or `null` for `None`.
    pub fn opt_str(s: Option<&str>) -> Json {
        s.map_or(Json::Null, |s| Json::Str(s.to_owned()))
    }

    /// An integer, or `null` for `None`.
    pub fn opt_int(i: Option<i64>) -> Json {
        i.map_or(Json::Null, Json::Int)
    }

    /// An array of integers.
    pub fn ints(v: &[i32]) -> Json {
        Json::Array(v.iter().map(|&i| Json::Int(i64::from(i))).collect())
    }

    /// Write the value on one line (no trailing newline).
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        match self {
            Json::Null => out.write_all(b"null"),
            Json::Bool(b) => write!(out, "{b}"),
            Json::Int(i) => write!(out, "{i}"),
            Json::Str(s) => write_str(out, Some(s.as_bytes())),
            Json::Array(items) => {
                out.write_all(b"[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    item.write(out)?;
                }
                out.write_all(b"]")
            }
            Json::Object(fields) => {
                out.write_all(b"{")?;
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    write_str(out, Some(name.as_bytes()))?;
                    out.write_all(b":")?;
                    value.write(out)?;
                }
                out.write_all(b"}")
            }
        }
    }

    /// A string.
    pub fn str(s: &str) -> Json {
        Json::Str(s.to_owned())
    }

    /// An integer from any integer type (saturating at `i64::MAX`).
    pub fn int(i: impl TryInto<i64>) -> Json {
        Json::Int(i.try_into().unwrap_or(i64::MAX))
    }

    /// Write the value and a newline.
    pub fn write_line(&self, out: &mut dyn Write) -> io::Result<()> {
        self.write(out)?;
        out.write_all(b"\n")
    }
}

impl std::fmt::Display for Json {
    /// The value on one line, as [`Json::write`] writes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = Vec::new();
        self.write(&mut out).map_err(|_| std::fmt::Error)?;
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// A JSON string (or `null`), escaped per RFC 8259; invalid UTF-8 becomes
/// U+FFFD.
pub fn write_str(out: &mut dyn Write, b: Option<&[u8]>) -> io::Result<()> {
    let Some(b) = b else {
        return out.write_all(b"null");
    };
    out.write_all(b"\"")?;
    for c in String::from_utf8_lossy(b).chars() {
        match c {
            '"' => out.write_all(b"\\\"")?,
            '\\' => out.write_all(b"\\\\")?,
            '\n' => out.write_all(b"\\n")?,
            '\r' => out.write_all(b"\\r")?,
            '\t' => out.write_all(b"\\t")?,
            c if u32::from(c) < 0x20 => write!(out, "\\u{:04x}", u32::from(c))?,
            c => {
                let mut buf = [0u8; 4];
                out.write_all(c.encode_utf8(&mut buf).as_bytes())?;
            }
        }
    }
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(v: &Json) -> String {
        let mut out = Vec::new();
        v.write(&mut out).expect("writes");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn objects_keep_their_order_and_nest() {
        let v = Json::Object(vec![
            ("name", Json::Str("a\"b".into())),
            ("id", Json::Int(-3)),
            ("rack", Json::opt_str(None)),
            ("isr", Json::ints(&[1, 2])),
            ("internal", Json::Bool(false)),
            ("empty", Json::Array(vec![])),
            ("inner", Json::Object(vec![])),
        ]);
        assert_eq!(
            render(&v),
            r#"{"name":"a\"b","id":-3,"rack":null,"isr":[1,2],"internal":false,"empty":[],"inner":{}}"#
        );
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        write_str(&mut out, Some(b"\n\t\\\x01\xff")).expect("writes");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "\"\\n\\t\\\\\\u0001\u{fffd}\""
        );
    }
}
