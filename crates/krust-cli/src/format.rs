//! The `-f FORMAT` of `krust consume`, as kcat's: `%t` topic, `%p`
//! partition, `%o` offset, `%k` key, `%s` value, `%K` / `%S` key / value
//! length (-1 for null), `%T` timestamp (ms since the epoch, -1 when the
//! broker kept none), `%h` headers as `k=v,...`, `%%` a percent sign, and
//! the escapes `\n`, `\t`, `\r`, `\\`. The string is compiled once into
//! segments; writing a record walks them without parsing again.
//!
//! Null keys, values and header values print as nothing (kcat without `-Z`).

use std::fmt;
use std::io::{self, Write};

use crate::json;

/// Called with each header's key and value (`None` for null).
pub type HeaderFn<'a> = dyn FnMut(&[u8], Option<&[u8]>) -> io::Result<()> + 'a;

/// What one record offers to a format: the consumer's record, or a test's.
pub trait Fields {
    /// The topic.
    fn topic(&self) -> &str;
    /// The partition.
    fn partition(&self) -> i32;
    /// The offset.
    fn offset(&self) -> i64;
    /// The timestamp in ms since the epoch, -1 for none.
    fn timestamp(&self) -> i64;
    /// The key, `None` for null.
    fn key(&self) -> Option<&[u8]>;
    /// The value, `None` for null.
    fn value(&self) -> Option<&[u8]>;
    /// Call `f` with each header's key and value (`None` for null), in
    /// order.
    fn each_header(&self, f: &mut HeaderFn<'_>) -> io::Result<()>;
}

/// One piece of a compiled format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    KeyLen,
    Value,
    ValueLen,
    Timestamp,
    Headers,
    /// The whole record as one JSON object (`--json`).
    Json,
}

/// A compiled `-f` format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    segments: Vec<Segment>,
}

/// A format string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// The format as given.
    pub format: String,
    /// What is wrong and where.
    pub reason: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad format `{}`: {}", self.format, self.reason)
    }
}

impl std::error::Error for FormatError {}

impl Default for Format {
    /// One value per line.
    fn default() -> Self {
        Format {
            segments: vec![Segment::Value, Segment::Literal(b"\n".to_vec())],
        }
    }
}

impl Format {
    /// One JSON object per record and line (see `write_json`).
    pub fn json() -> Format {
        Format {
            segments: vec![Segment::Json, Segment::Literal(b"\n".to_vec())],
        }
    }

    /// Compile `format`; an unknown `%x` or `\x`, or a trailing lone `%` or
    /// `\`, is an error naming it.
    pub fn parse(format: &str) -> Result<Format, FormatError> {
        let bad = |reason: String| FormatError {
            format: format.to_owned(),
            reason,
        };
        let mut segments = Vec::new();
        let mut literal = Vec::new();
        let mut chars = format.char_indices();
        while let Some((at, c)) = chars.next() {
            let field = match c {
                '%' => match chars.next() {
                    Some((_, '%')) => {
                        literal.push(b'%');
                        continue;
                    }
                    Some((_, 't')) => Segment::Topic,
                    Some((_, 'p')) => Segment::Partition,
                    Some((_, 'o')) => Segment::Offset,
                    Some((_, 'k')) => Segment::Key,
                    Some((_, 'K')) => Segment::KeyLen,
                    Some((_, 's')) => Segment::Value,
                    Some((_, 'S')) => Segment::ValueLen,
                    Some((_, 'T')) => Segment::Timestamp,
                    Some((_, 'h')) => Segment::Headers,
                    Some((_, other)) => {
                        return Err(bad(format!(
                            "unknown field `%{other}` at {at} (known: %t %p %o %k %K %s %S %T %h %%)"
                        )));
                    }
                    None => return Err(bad(format!("lone `%` at the end (at {at})"))),
                },
                '\\' => {
                    let byte = match chars.next() {
                        Some((_, 'n')) => b'\n',
                        Some((_, 't')) => b'\t',
                        Some((_, 'r')) => b'\r',
                        Some((_, '\\')) => b'\\',
                        Some((_, other)) => {
                            return Err(bad(format!(
                                "unknown escape `\\{other}` at {at} (known: \\n \\t \\r \\\\)"
                            )));
                        }
                        None => return Err(bad(format!("lone `\\` at the end (at {at})"))),
                    };
                    literal.push(byte);
                    continue;
                }
                c => {
                    let mut buf = [0u8; 4];
                    literal.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    continue;
                }
            };
            if !literal.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut literal)));
            }
            segments.push(field);
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Ok(Format { segments })
    }

    /// Write one record.
    pub fn write(&self, out: &mut dyn Write, r: &dyn Fields) -> io::Result<()> {
        let len = |b: Option<&[u8]>| b.map_or(-1, |b| i64::try_from(b.len()).unwrap_or(i64::MAX));
        for s in &self.segments {
            match s {
                Segment::Literal(l) => out.write_all(l)?,
                Segment::Topic => out.write_all(r.topic().as_bytes())?,
                Segment::Partition => write!(out, "{}", r.partition())?,
                Segment::Offset => write!(out, "{}", r.offset())?,
                Segment::Key => out.write_all(r.key().unwrap_or_default())?,
                Segment::KeyLen => write!(out, "{}", len(r.key()))?,
                Segment::Value => out.write_all(r.value().unwrap_or_default())?,
                Segment::ValueLen => write!(out, "{}", len(r.value()))?,
                Segment::Timestamp => write!(out, "{}", r.timestamp())?,
                Segment::Headers => {
                    let mut first = true;
                    r.each_header(&mut |k, v| {
                        if !std::mem::take(&mut first) {
                            out.write_all(b",")?;
                        }
                        out.write_all(k)?;
                        out.write_all(b"=")?;
                        out.write_all(v.unwrap_or_default())
                    })?;
                }
                Segment::Json => write_json(out, r)?,
            }
        }
        Ok(())
    }
}

/// One record as a JSON object on one line: `topic`, `partition`,
/// `offset`, `timestamp` (ms, -1 for none), `key` and `value` (strings,
/// invalid UTF-8 replaced by U+FFFD, `null` for null), `headers` (an array
/// of `[key, value]`, in order, since keys may repeat). The field names and
/// their order are stable.
fn write_json(out: &mut dyn Write, r: &dyn Fields) -> io::Result<()> {
    out.write_all(b"{\"topic\":")?;
    json::write_str(out, Some(r.topic().as_bytes()))?;
    write!(
        out,
        ",\"partition\":{},\"offset\":{},\"timestamp\":{},\"key\":",
        r.partition(),
        r.offset(),
        r.timestamp()
    )?;
    json::write_str(out, r.key())?;
    out.write_all(b",\"value\":")?;
    json::write_str(out, r.value())?;
    out.write_all(b",\"headers\":[")?;
    let mut first = true;
    r.each_header(&mut |k, v| {
        if !std::mem::take(&mut first) {
            out.write_all(b",")?;
        }
        out.write_all(b"[")?;
        json::write_str(out, Some(k))?;
        out.write_all(b",")?;
        json::write_str(out, v)?;
        out.write_all(b"]")
    })?;
    out.write_all(b"]}")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rec {
        key: Option<&'static [u8]>,
        value: Option<&'static [u8]>,
        headers: Vec<(&'static [u8], Option<&'static [u8]>)>,
    }

    impl Fields for Rec {
        fn topic(&self) -> &str {
            "orders"
        }
        fn partition(&self) -> i32 {
            2
        }
        fn offset(&self) -> i64 {
            41
        }
        fn timestamp(&self) -> i64 {
            1_700_000_000_123
        }
        fn key(&self) -> Option<&[u8]> {
            self.key
        }
        fn value(&self) -> Option<&[u8]> {
            self.value
        }
        fn each_header(&self, f: &mut HeaderFn<'_>) -> io::Result<()> {
            for (k, v) in &self.headers {
                f(k, *v)?;
            }
            Ok(())
        }
    }

    fn rec() -> Rec {
        Rec {
            key: Some(b"k1"),
            value: Some(b"hello"),
            headers: vec![(b"a", Some(b"1")), (b"b", None)],
        }
    }

    fn render(format: &str, r: &Rec) -> String {
        let f = Format::parse(format).expect("parses");
        let mut out = Vec::new();
        f.write(&mut out, r).expect("writes");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn every_field_and_escape() {
        assert_eq!(
            render("%t|%p|%o|%k|%s|%T|%h\\n", &rec()),
            "orders|2|41|k1|hello|1700000000123|a=1,b=\n"
        );
        assert_eq!(render("%K %S", &rec()), "2 5");
        assert_eq!(render("100%% \\t\\\\\\r", &rec()), "100% \t\\\r");
    }

    #[test]
    fn default_is_one_value_per_line() {
        let mut out = Vec::new();
        Format::default().write(&mut out, &rec()).expect("writes");
        assert_eq!(out, b"hello\n");
        assert_eq!(Format::parse("%s\\n").expect("parses"), Format::default());
    }

    #[test]
    fn nulls_print_empty_and_lengths_minus_one() {
        let r = Rec {
            key: None,
            value: None,
            headers: vec![],
        };
        assert_eq!(render("[%k][%s][%h] %K %S", &r), "[][][] -1 -1");
    }

    #[test]
    fn literals_are_merged_and_unicode_kept() {
        let f = Format::parse("é%%x\\n").expect("parses");
        assert_eq!(
            f.segments,
            vec![Segment::Literal("é%x\n".as_bytes().to_vec())]
        );
        let f = Format::parse("%k=%s").expect("parses");
        assert_eq!(
            f.segments,
            vec![
                Segment::Key,
                Segment::Literal(b"=".to_vec()),
                Segment::Value
            ]
        );
    }

    #[test]
    fn errors_name_the_problem() {
        for (format, needle) in [
            ("%x", "`%x`"),
            ("abc%", "lone `%`"),
            ("\\q", "`\\q`"),
            ("x\\", "lone `\\`"),
        ] {
            let e = Format::parse(format).expect_err(format);
            assert_eq!(e.format, format);
            let text = e.to_string();
            assert!(text.contains(needle), "{format}: {text}");
        }
    }

    #[test]
    fn binary_values_pass_through_unchanged() {
        let r = Rec {
            key: Some(b"\x00\xff"),
            value: Some(b"\xfe\n"),
            headers: vec![],
        };
        let f = Format::parse("%k%s").expect("parses");
        let mut out = Vec::new();
        f.write(&mut out, &r).expect("writes");
        assert_eq!(out, b"\x00\xff\xfe\n");
    }

    #[test]
    fn json_is_one_escaped_object_per_line() {
        let r = Rec {
            key: None,
            value: Some(b"say \"hi\"\n\x01\xff"),
            headers: vec![(b"a", Some(b"1")), (b"a", None)],
        };
        let mut out = Vec::new();
        Format::json().write(&mut out, &r).expect("writes");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "{\"topic\":\"orders\",\"partition\":2,\"offset\":41,\"timestamp\":1700000000123,\
             \"key\":null,\"value\":\"say \\\"hi\\\"\\n\\u0001\u{fffd}\",\
             \"headers\":[[\"a\",\"1\"],[\"a\",null]]}\n"
        );
    }
}
