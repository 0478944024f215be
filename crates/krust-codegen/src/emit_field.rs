//! Per-field code: Rust types, defaults, and the expressions and statements
//! that read, write and sample one field.

use crate::model::{DefaultValue, Field, Prim, Type};
use crate::versions::{Cond, Range};

/// What the field code needs to know about the struct around it.
pub struct Ctx<'a> {
    /// The struct's Rust name.
    pub owner: &'a str,
    /// Versions the struct can be encoded at.
    pub reach: Range,
    /// Whether the message is flexible, within `reach`.
    pub flex: Cond,
    /// The message's flexible versions.
    pub flex_range: Range,
}

impl Ctx<'_> {
    /// The `what` string naming a field in errors.
    pub fn what(&self, f: &Field) -> String {
        format!("\"{}.{}\"", self.owner, f.name)
    }

    /// The expression saying whether the field uses compact encodings.
    pub fn compact(&self, f: &Field) -> String {
        match f.flexible {
            Some(r) => r.cond(self.reach).expr(),
            None => match self.flex_range.cond(self.reach.intersect(f.versions)) {
                Cond::Always => "true".into(),
                Cond::Never => "false".into(),
                Cond::Expr(..) => "is_flexible".into(),
            },
        }
    }

    /// Condition: the field is present at `version`.
    pub fn present(&self, f: &Field) -> Cond {
        f.versions.cond(self.reach)
    }

    /// Condition: the field may be null at `version` (within its versions).
    pub fn nullable(&self, f: &Field) -> Cond {
        f.nullable.cond(self.reach.intersect(f.versions))
    }
}

/// The Rust type of a value of `ty` (not nullable).
pub fn base_type(ty: &Type) -> String {
    match ty {
        Type::Prim(p) => match p {
            Prim::Bool => "bool",
            Prim::Int8 => "i8",
            Prim::Int16 => "i16",
            Prim::Uint16 => "u16",
            Prim::Int32 => "i32",
            Prim::Uint32 => "u32",
            Prim::Int64 => "i64",
            Prim::Float64 => "f64",
            Prim::String => "KString",
            Prim::Bytes | Prim::Records => "Bytes",
            Prim::Uuid => "Uuid",
        }
        .to_string(),
        Type::Struct(s) => s.clone(),
        Type::Array(e) => format!("Vec<{}>", base_type(e)),
    }
}

/// The Rust type of the field.
pub fn field_type(f: &Field) -> String {
    if f.is_option() {
        format!("Option<{}>", base_type(&f.ty))
    } else {
        base_type(&f.ty)
    }
}

fn base_default(ty: &Type, d: &DefaultValue) -> String {
    match (ty, d) {
        (Type::Prim(Prim::Float64), DefaultValue::Int(n)) => format!("{n}.0"),
        (Type::Prim(Prim::Float64), DefaultValue::Float(x)) => format!("{x:?}"),
        (_, DefaultValue::Int(n)) => n.to_string(),
        (_, DefaultValue::Bool(b)) => b.to_string(),
        (_, DefaultValue::Str(s)) if !s.is_empty() => format!("KString::from_static({s:?})"),
        (Type::Prim(p), _) => match p {
            Prim::Bool => "false".into(),
            Prim::Float64 => "0.0".into(),
            Prim::String => "KString::default()".into(),
            Prim::Bytes | Prim::Records => "Bytes::new()".into(),
            Prim::Uuid => "Uuid::ZERO".into(),
            _ => "0".into(),
        },
        (Type::Struct(s), _) => format!("{s}::default()"),
        (Type::Array(_), _) => "Vec::new()".into(),
    }
}

/// The field's default value as a Rust expression. Nullable fields default
/// to `None` only when the schema says `"null"` (Kafka's rule); records
/// default to null when nullable anywhere, else to empty.
pub fn default_expr(f: &Field) -> String {
    if f.is_option() {
        let null = match f.ty {
            Type::Prim(Prim::Records) => f.default == DefaultValue::Null || !f.nullable.is_empty(),
            _ => f.default == DefaultValue::Null,
        };
        if null {
            "None".into()
        } else {
            format!("Some({})", base_default(&f.ty, &f.default))
        }
    } else {
        base_default(&f.ty, &f.default)
    }
}

/// True when the default is what `#[derive(Default)]` would give.
pub fn is_type_default(f: &Field) -> bool {
    let e = default_expr(f);
    if f.is_option() {
        return e == "None";
    }
    matches!(
        e.as_str(),
        "0" | "0.0" | "false" | "KString::default()" | "Bytes::new()" | "Uuid::ZERO" | "Vec::new()"
    ) || matches!(&f.ty, Type::Struct(s) if e == format!("{s}::default()"))
}

/// Expression: true when `self.<field>` differs from its default.
pub fn non_default(f: &Field) -> String {
    let p = format!("self.{}", f.rust_name);
    let d = default_expr(f);
    if f.is_option() {
        return if d == "None" {
            format!("{p}.is_some()")
        } else {
            format!("{p} != {d}")
        };
    }
    match (&f.ty, d.as_str()) {
        (Type::Array(_), _)
        | (Type::Prim(Prim::String | Prim::Bytes), "KString::default()" | "Bytes::new()") => {
            format!("!{p}.is_empty()")
        }
        (Type::Prim(Prim::Bool), "false") => p,
        (Type::Prim(Prim::Bool), "true") => format!("!{p}"),
        _ => format!("{p} != {d}"),
    }
}

/// Expression of type `Result<T, DecodeError>` reading a non-null value of
/// `ty` from `buf`.
pub fn read_value(ctx: &Ctx, f: &Field, ty: &Type) -> String {
    let w = ctx.what(f);
    let c = ctx.compact(f);
    match ty {
        Type::Prim(p) => match p {
            Prim::Bool => format!("wire::get_bool(buf, {w})"),
            Prim::Int8 => format!("wire::get_i8(buf, {w})"),
            Prim::Int16 => format!("wire::get_i16(buf, {w})"),
            Prim::Uint16 => format!("wire::get_u16(buf, {w})"),
            Prim::Int32 => format!("wire::get_i32(buf, {w})"),
            Prim::Uint32 => format!("wire::get_u32(buf, {w})"),
            Prim::Int64 => format!("wire::get_i64(buf, {w})"),
            Prim::Float64 => format!("wire::get_f64(buf, {w})"),
            Prim::Uuid => format!("wire::get_uuid(buf, {w})"),
            Prim::String => format!("wire::get_string(buf, {c}, {w}, version)"),
            Prim::Bytes | Prim::Records => format!("wire::get_bytes(buf, {c}, {w}, version)"),
        },
        Type::Struct(s) => format!("{s}::decode(buf, version)"),
        Type::Array(e) => {
            let elem = read_value(ctx, f, e);
            format!("wire::get_array(buf, {c}, {w}, version, |buf| {elem})")
        }
    }
}

/// Expression of type `Result<Option<T>, DecodeError>` reading a nullable
/// value of `ty` from `buf`.
fn read_nullable(ctx: &Ctx, f: &Field) -> String {
    let w = ctx.what(f);
    let c = ctx.compact(f);
    match &f.ty {
        Type::Prim(Prim::String) => format!("wire::get_nullable_string(buf, {c}, {w})"),
        Type::Prim(_) => format!("wire::get_nullable_bytes(buf, {c}, {w})"),
        Type::Struct(s) => {
            format!("wire::get_nullable_struct(buf, {w}, |buf| {s}::decode(buf, version))")
        }
        Type::Array(e) => {
            let elem = read_value(ctx, f, e);
            format!("wire::get_nullable_array(buf, {c}, {w}, |buf| {elem})")
        }
    }
}

/// Statement assigning the field, read from `buf`, to `this.<field>`.
pub fn read_stmt(ctx: &Ctx, f: &Field) -> String {
    let lhs = format!("this.{}", f.rust_name);
    if !f.is_option() {
        return format!("{lhs} = {}?;", read_value(ctx, f, &f.ty));
    }
    match ctx.nullable(f) {
        Cond::Always => format!("{lhs} = {}?;", read_nullable(ctx, f)),
        Cond::Never => format!("{lhs} = Some({}?);", read_value(ctx, f, &f.ty)),
        Cond::Expr(e, _) => format!(
            "{lhs} = if {e} {{ {}? }} else {{ Some({}?) }};",
            read_nullable(ctx, f),
            read_value(ctx, f, &f.ty)
        ),
    }
}

/// Statement writing a non-null value of `ty` to `buf`: `val` is the value
/// (for `Copy` types), `r` a place or reference to it.
fn write_value(ctx: &Ctx, f: &Field, ty: &Type, val: &str, r: &str) -> String {
    let w = ctx.what(f);
    let c = ctx.compact(f);
    match ty {
        Type::Prim(p) => match p {
            Prim::Bool => format!("buf.put_u8(u8::from({val}));"),
            Prim::Int8 => format!("buf.put_i8({val});"),
            Prim::Int16 => format!("buf.put_i16({val});"),
            Prim::Uint16 => format!("buf.put_u16({val});"),
            Prim::Int32 => format!("buf.put_i32({val});"),
            Prim::Uint32 => format!("buf.put_u32({val});"),
            Prim::Int64 => format!("buf.put_i64({val});"),
            Prim::Float64 => format!("buf.put_f64({val});"),
            Prim::Uuid => format!("buf.put_slice(&{r}.0);"),
            Prim::String => format!("wire::put_string(buf, {c}, {r}.as_str(), {w})?;"),
            Prim::Bytes | Prim::Records => {
                format!("wire::put_nullable_bytes(buf, {c}, Some(&{r}[..]), {w})?;")
            }
        },
        Type::Struct(_) => format!("{r}.encode(buf, version)?;"),
        Type::Array(e) => {
            let closure = write_elem_closure(ctx, f, e);
            format!("wire::put_array(buf, {c}, Some(&{r}[..]), {w}, {closure})?;")
        }
    }
}

fn write_elem_closure(ctx: &Ctx, f: &Field, e: &Type) -> String {
    match e {
        Type::Struct(_) => "|buf, e| e.encode(buf, version)".into(),
        _ => format!(
            "|buf, e| {{ {} Ok(()) }}",
            write_value(ctx, f, e, "*e", "e")
        ),
    }
}

/// Statements writing `self.<field>` to `buf` (the field is present).
pub fn write_stmt(ctx: &Ctx, f: &Field) -> String {
    let p = format!("self.{}", f.rust_name);
    if !f.is_option() {
        return write_value(ctx, f, &f.ty, &p, &p);
    }
    let w = ctx.what(f);
    let c = ctx.compact(f);
    let n = ctx.nullable(f);
    let mut out = String::new();
    if n != Cond::Always {
        let cond = match &n {
            Cond::Expr(_, not) => format!("{p}.is_none() && {not}"),
            _ => format!("{p}.is_none()"),
        };
        out.push_str(&format!(
            "if {cond} {{ return Err(EncodeError::NullNotAllowed {{ message: \"{}\", field: \"{}\", version }}); }}\n",
            ctx.owner, f.name
        ));
    }
    let body = match &f.ty {
        Type::Prim(Prim::String) => {
            format!("wire::put_nullable_string(buf, {c}, {p}.as_deref(), {w})?;")
        }
        Type::Prim(_) => format!("wire::put_nullable_bytes(buf, {c}, {p}.as_deref(), {w})?;"),
        Type::Array(e) => {
            let closure = write_elem_closure(ctx, f, e);
            format!("wire::put_array(buf, {c}, {p}.as_deref(), {w}, {closure})?;")
        }
        Type::Struct(_) => match &n {
            Cond::Always => format!(
                "match &{p} {{ None => buf.put_i8(-1), Some(v) => {{ buf.put_i8(1); v.encode(buf, version)?; }} }}"
            ),
            Cond::Never => format!("if let Some(v) = &{p} {{ v.encode(buf, version)?; }}"),
            Cond::Expr(e, _) => format!(
                "match &{p} {{ None => buf.put_i8(-1), Some(v) => {{ if {e} {{ buf.put_i8(1); }} v.encode(buf, version)?; }} }}"
            ),
        },
    };
    out.push_str(&body);
    out
}

fn sample_value(ty: &Type) -> String {
    match ty {
        Type::Prim(p) => match p {
            Prim::Bool => "rng.bool()",
            Prim::Int8 => "rng.i8()",
            Prim::Int16 => "rng.i16()",
            Prim::Uint16 => "rng.u16()",
            Prim::Int32 => "rng.i32()",
            Prim::Uint32 => "rng.u32()",
            Prim::Int64 => "rng.i64()",
            Prim::Float64 => "rng.f64()",
            Prim::Uuid => "rng.uuid()",
            Prim::String => "rng.kstring()",
            Prim::Bytes | Prim::Records => "rng.bytes()",
        }
        .to_string(),
        Type::Struct(s) => format!("{s}::sample(rng, version)"),
        Type::Array(e) => format!("rng.vec(|rng| {})", sample_value(e)),
    }
}

/// Statement assigning a random value valid at `version` to `this.<field>`.
pub fn sample_stmt(ctx: &Ctx, f: &Field) -> String {
    let lhs = format!("this.{}", f.rust_name);
    let v = sample_value(&f.ty);
    if !f.is_option() {
        return format!("{lhs} = {v};");
    }
    match ctx.nullable(f) {
        Cond::Always => format!("{lhs} = if rng.one_in(4) {{ None }} else {{ Some({v}) }};"),
        Cond::Never => format!("{lhs} = Some({v});"),
        Cond::Expr(e, _) => {
            format!("{lhs} = if {e} && rng.one_in(4) {{ None }} else {{ Some({v}) }};")
        }
    }
}
