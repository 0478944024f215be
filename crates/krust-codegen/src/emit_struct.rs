//! Code for one struct: the definition with its documentation, `Default`,
//! `Encode`, `Decode`, and the random `sample` constructor.

use std::fmt::Write;

use crate::emit_field::{self as ef, Ctx};
use crate::model::{DefaultValue, Field, Message, StructDef};
use crate::versions::Cond;

/// Format a doc comment (each line prefixed with `///`).
pub fn doc(out: &mut String, text: &str) {
    for line in text.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            out.push_str("///\n");
        } else {
            let _ = writeln!(out, "/// {line}");
        }
    }
}

fn field_doc(f: &Field) -> String {
    let mut s = match &f.about {
        Some(a) if !a.trim().is_empty() => a.trim().to_string(),
        _ => format!("The `{}` field.", f.name),
    };
    if !s.ends_with('.') {
        s.push('.');
    }
    s.push_str("\n\n");
    let _ = write!(s, "Versions: {}", f.versions.describe());
    if !f.nullable.is_empty() {
        let _ = write!(s, "; nullable: {}", f.nullable.describe());
    }
    if let Some(tag) = f.tag {
        let _ = write!(s, "; tagged field, tag {tag}");
    }
    match &f.default {
        DefaultValue::TypeDefault => {}
        DefaultValue::Null => s.push_str("; default: null"),
        DefaultValue::Int(n) => {
            let _ = write!(s, "; default: {n}");
        }
        DefaultValue::Float(x) => {
            let _ = write!(s, "; default: {x}");
        }
        DefaultValue::Bool(b) => {
            let _ = write!(s, "; default: {b}");
        }
        DefaultValue::Str(v) => {
            let _ = write!(s, "; default: {v:?}");
        }
    }
    if f.ignorable {
        s.push_str("; ignorable (dropped at versions that lack it)");
    }
    if let Some(e) = &f.entity_type {
        let _ = write!(s, "; entity: {e}");
    }
    s.push('.');
    if f.map_key {
        s.push_str(
            "\n\nKafka's Java classes key a map by this field; krust keeps the \
             elements in a `Vec` in wire order (duplicates are not merged).",
        );
    }
    s
}

fn struct_doc(m: &Message, s: &StructDef) -> String {
    if s.top_level {
        let mut d = format!(
            "The `{}` {} (generated from `{}.json`).\n\n",
            m.name, m.kind, m.name
        );
        if let Some(k) = m.api_key {
            let _ = write!(d, "API key {k}; ");
        }
        let _ = write!(
            d,
            "valid versions {}; flexible versions {}.",
            m.valid.describe(),
            m.flexible.describe()
        );
        if let Some(dep) = m.deprecated {
            let _ = write!(d, " Deprecated versions: {}.", dep.describe());
        }
        if m.unstable {
            d.push_str(" Kafka marks its newest version as unstable.");
        }
        d
    } else {
        let mut d = match &s.about {
            Some(a) if !a.trim().is_empty() => a.trim().to_string(),
            _ => format!("The `{}` struct of `{}`.", s.name, m.name),
        };
        if !d.ends_with('.') {
            d.push('.');
        }
        d
    }
}

fn flexible(m: &Message, s: &StructDef) -> Cond {
    m.flexible.cond(s.reach)
}

/// Emit everything for one struct.
pub fn emit(out: &mut String, m: &Message, s: &StructDef) {
    let ctx = Ctx {
        owner: &s.name,
        reach: s.reach,
        flex: flexible(m, s),
        flex_range: m.flexible,
    };
    let has_tagged_section = !m.flexible.is_empty();
    let derive_default = s.fields.iter().all(ef::is_type_default);

    doc(out, &struct_doc(m, s));
    out.push_str("#[derive(Debug, Clone, PartialEq");
    out.push_str(if derive_default {
        ", Default)]\n"
    } else {
        ")]\n"
    });
    let _ = writeln!(out, "pub struct {} {{", s.name);
    for f in &s.fields {
        doc(out, &field_doc(f));
        let _ = writeln!(out, "pub {}: {},", f.rust_name, ef::field_type(f));
    }
    if has_tagged_section {
        out.push_str(
            "/// Tagged fields this codec does not know, kept so they survive a re-encode.\n",
        );
        out.push_str("pub unknown_tagged_fields: Vec<RawTaggedField>,\n");
    }
    out.push_str("}\n\n");

    if !derive_default {
        let _ = writeln!(out, "impl Default for {} {{", s.name);
        out.push_str("fn default() -> Self {\nSelf {\n");
        for f in &s.fields {
            let _ = writeln!(out, "{}: {},", f.rust_name, ef::default_expr(f));
        }
        if has_tagged_section {
            out.push_str("unknown_tagged_fields: Vec::new(),\n");
        }
        out.push_str("}\n}\n}\n\n");
    }

    emit_encode(out, m, s, &ctx);
    emit_decode(out, m, s, &ctx);
    emit_sample(out, m, s, &ctx);
}

fn version_check(m: &Message, err: &str) -> String {
    let bad = if m.valid.lo == m.valid.hi {
        format!("version != {}", m.valid.lo)
    } else {
        format!("!({}..={}).contains(&version)", m.valid.lo, m.valid.hi)
    };
    format!("if {bad} {{ return Err({err}); }}\n")
}

/// True when `word` occurs in `code` as a whole identifier.
pub fn uses_word(code: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + word.len()..].chars().next();
        !before.is_some_and(|c| is_ident(c) || c == '.') && !after.is_some_and(is_ident)
    })
}

fn flex_binding(body: &str, ctx: &Ctx) -> String {
    match &ctx.flex {
        Cond::Expr(e, _) if uses_word(body, "is_flexible") => format!("let is_flexible = {e};\n"),
        _ => String::new(),
    }
}

fn finish_fn(out: &mut String, sig: &str, prologue: &str, body: &str, ctx: &Ctx) {
    let full = format!("{prologue}{}{body}", flex_binding(body, ctx));
    let sig = if uses_word(&full, "version") {
        sig.to_string()
    } else {
        sig.replace("version:", "_version:")
    };
    let _ = writeln!(out, "{sig} {{\n{full}}}");
}

fn emit_encode(out: &mut String, m: &Message, s: &StructDef, ctx: &Ctx) {
    let mut body = String::new();
    let mut tagged: Vec<&Field> = Vec::new();
    for f in &s.fields {
        let present = ctx.present(f);
        let absent_check = if f.ignorable {
            String::new()
        } else {
            format!(
                "if {} {{ return Err(EncodeError::FieldNotInVersion {{ message: \"{}\", field: \"{}\", version }}); }}\n",
                ef::non_default(f),
                s.name,
                f.name
            )
        };
        if f.tag.is_some() {
            tagged.push(f);
            if !f.ignorable {
                let cond = match &present {
                    Cond::Always => None,
                    Cond::Never => Some(ef::non_default(f)),
                    Cond::Expr(_, not) => Some(format!("{not} && {}", ef::non_default(f))),
                };
                if let Some(cond) = cond {
                    let _ = writeln!(
                        body,
                        "if {cond} {{ return Err(EncodeError::FieldNotInVersion {{ message: \"{}\", field: \"{}\", version }}); }}",
                        s.name, f.name
                    );
                }
            }
            continue;
        }
        let write = ef::write_stmt(ctx, f);
        match &present {
            Cond::Always => {
                body.push_str(&write);
                body.push('\n');
            }
            Cond::Never => body.push_str(&absent_check),
            Cond::Expr(e, _) => {
                let _ = write!(body, "if {e} {{\n{write}\n}}");
                if absent_check.is_empty() {
                    body.push('\n');
                } else {
                    let _ = write!(body, " else {absent_check}");
                }
            }
        }
    }
    if !m.flexible.is_empty() {
        tagged.sort_by_key(|f| f.tag);
        let mut sec = String::new();
        if tagged.is_empty() {
            sec.push_str(
                "wire::put_tagged_fields(buf, Vec::new(), &self.unknown_tagged_fields)?;\n",
            );
        } else {
            sec.push_str("let mut tagged: Vec<(u32, Bytes)> = Vec::new();\n");
            for f in &tagged {
                let write = ef::write_stmt(ctx, f);
                let cond = match f.versions.cond(ctx.reach.intersect(m.flexible)) {
                    Cond::Always => ef::non_default(f),
                    Cond::Never => continue,
                    Cond::Expr(e, _) => format!("{e} && {}", ef::non_default(f)),
                };
                let _ = write!(
                    sec,
                    "if {cond} {{\nlet buf = &mut BytesMut::new();\n{write}\ntagged.push(({}, buf.split().freeze()));\n}}\n",
                    f.tag.unwrap_or_default()
                );
            }
            sec.push_str("wire::put_tagged_fields(buf, tagged, &self.unknown_tagged_fields)?;\n");
        }
        body.push_str(&flexible(m, s).guard(&sec));
    }
    body.push_str("Ok(())\n");
    let prologue = if s.top_level {
        version_check(
            m,
            &format!(
                "EncodeError::UnsupportedVersion {{ message: \"{}\", version }}",
                m.name
            ),
        )
    } else {
        String::new()
    };
    let _ = writeln!(out, "impl Encode for {} {{", s.name);
    finish_fn(
        out,
        "fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError>",
        &prologue,
        &body,
        ctx,
    );
    out.push_str("}\n\n");
}

fn emit_decode(out: &mut String, m: &Message, s: &StructDef, ctx: &Ctx) {
    let mut body = String::from("let mut this = Self::default();\n");
    let mut tagged: Vec<&Field> = Vec::new();
    for f in &s.fields {
        if f.tag.is_some() {
            tagged.push(f);
            continue;
        }
        body.push_str(&ctx.present(f).guard(&ef::read_stmt(ctx, f)));
    }
    if !m.flexible.is_empty() {
        tagged.sort_by_key(|f| f.tag);
        let what = format!("\"{} tagged fields\"", s.name);
        let in_flexible = ctx.reach.intersect(m.flexible);
        let sec = if tagged
            .iter()
            .all(|f| f.versions.cond(in_flexible) == Cond::Never)
        {
            format!(
                "wire::get_tagged_fields(buf, {what}, &mut this.unknown_tagged_fields, |_, _| Ok(false))?;\n"
            )
        } else {
            let mut arms = String::new();
            for f in &tagged {
                let guard = match f.versions.cond(ctx.reach.intersect(m.flexible)) {
                    Cond::Always => String::new(),
                    Cond::Never => continue,
                    Cond::Expr(e, _) => format!(" if {e}"),
                };
                let _ = writeln!(
                    arms,
                    "{}{guard} => {{ {} }}",
                    f.tag.unwrap_or_default(),
                    ef::read_stmt(ctx, f)
                );
            }
            format!(
                "wire::get_tagged_fields(buf, {what}, &mut this.unknown_tagged_fields, |tag, buf| {{\nmatch tag {{\n{arms}_ => return Ok(false),\n}}\nOk(true)\n}})?;\n"
            )
        };
        body.push_str(&flexible(m, s).guard(&sec));
    }
    if body.contains("this.") {
        body.push_str("Ok(this)\n");
    } else {
        body = "Ok(Self::default())\n".into();
    }
    let prologue = if s.top_level {
        version_check(
            m,
            &format!(
                "DecodeError::UnsupportedVersion {{ what: \"{}\", version }}",
                m.name
            ),
        )
    } else {
        String::new()
    };
    let _ = writeln!(out, "impl Decode for {} {{", s.name);
    finish_fn(
        out,
        "fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>",
        &prologue,
        &body,
        ctx,
    );
    out.push_str("}\n\n");
}

fn emit_sample(out: &mut String, m: &Message, s: &StructDef, ctx: &Ctx) {
    let mut body = String::from("let mut this = Self::default();\n");
    for f in &s.fields {
        body.push_str(&ctx.present(f).guard(&ef::sample_stmt(ctx, f)));
    }
    if !m.flexible.is_empty() {
        // Unknown tags start well above the struct's own: newer Kafka versions
        // add the next tags, and other implementations reject a tag they know
        // at a version that lacks it.
        let next_tag = s
            .fields
            .iter()
            .filter_map(|f| f.tag)
            .max()
            .map_or(0, |t| t + 1)
            + 16;
        body.push_str(&flexible(m, s).guard(&format!(
            "this.unknown_tagged_fields = rng.unknown_tagged_fields({next_tag});"
        )));
    }
    if body.contains("this.") {
        body.push_str("this\n");
    } else {
        body = "Self::default()\n".into();
    }
    let _ = writeln!(out, "#[cfg(feature = \"sample\")]\nimpl {} {{", s.name);
    out.push_str(
        "/// A random value that is valid at `version`: fields absent at that version keep\n\
         /// their default, and null appears only where the version allows it.\n",
    );
    let sig = "pub fn sample(rng: &mut SampleRng, version: i16) -> Self";
    let sig = if uses_word(&body, "version") {
        sig.to_string()
    } else {
        sig.replace("version:", "_version:")
    };
    let sig = if uses_word(&body, "rng") {
        sig
    } else {
        sig.replace("rng:", "_rng:")
    };
    let _ = writeln!(out, "{sig} {{\n{body}}}");
    out.push_str("}\n\n");
}
