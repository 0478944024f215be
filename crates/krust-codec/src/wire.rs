//! Primitive wire types of the Kafka protocol ("Protocol Primitive Types" in
//! the protocol guide, KIP-482 for the compact and tagged encodings).
//!
//! Readers take `&mut Bytes` and advance it; every read is bounds-checked and
//! returns [`DecodeError`] instead of panicking. Strings and byte fields are
//! slices of the input (`Bytes::split_to`), never copies. Every length or
//! count read off the wire is checked against the bytes left *before* anything
//! is allocated, so no input can make the decoder allocate more than a small
//! multiple of its own size.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};

/// Encode a value at a protocol version.
pub trait Encode {
    /// Append the encoding of `self` at `version` to `buf`.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError>;
}

/// Decode a value at a protocol version.
pub trait Decode: Sized {
    /// Decode one value from the front of `buf` at `version`, advancing `buf`.
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
}

/// A UTF-8 string that shares the buffer it was decoded from.
///
/// Cloning is cheap (a reference count); `as_str` does not re-validate.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KString(Bytes);

impl KString {
    /// A string from a static literal, without allocating.
    pub const fn from_static(s: &'static str) -> Self {
        KString(Bytes::from_static(s.as_bytes()))
    }

    /// Validate `bytes` as UTF-8 and wrap them without copying.
    pub fn from_utf8(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(KString(bytes))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor validates UTF-8 (`from_utf8`) or starts from
        // a `str` (`from_static`, `From<String>`, `From<&str>`), and the bytes
        // are immutable afterwards.
        #[allow(unsafe_code)]
        unsafe {
            std::str::from_utf8_unchecked(&self.0)
        }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the string is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for KString {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for KString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for KString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for KString {
    fn from(s: String) -> Self {
        KString(Bytes::from(s.into_bytes()))
    }
}

impl From<&str> for KString {
    fn from(s: &str) -> Self {
        KString(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl PartialEq<str> for KString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for KString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A 128-bit UUID as Kafka sends it (topic ids, incarnation ids).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID Kafka uses for "none".
    pub const ZERO: Uuid = Uuid([0; 16]);
}

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A tagged field this codec does not know, kept so that it survives a
/// decode/encode round trip (KIP-482).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawTaggedField {
    /// The tag.
    pub tag: u32,
    /// The field's bytes, as they were on the wire.
    pub data: Bytes,
}

fn need(buf: &Bytes, n: usize, what: &'static str) -> Result<(), DecodeError> {
    if buf.remaining() < n {
        return Err(DecodeError::UnexpectedEof {
            what,
            needed: n,
            remaining: buf.remaining(),
        });
    }
    Ok(())
}

macro_rules! fixed_reader {
    ($(#[$doc:meta] $name:ident -> $ty:ty = $get:ident;)*) => {$(
        #[$doc]
        pub fn $name(buf: &mut Bytes, what: &'static str) -> Result<$ty, DecodeError> {
            need(buf, std::mem::size_of::<$ty>(), what)?;
            Ok(buf.$get())
        }
    )*};
}

fixed_reader! {
    /// Read a signed byte.
    get_i8 -> i8 = get_i8;
    /// Read a big-endian i16.
    get_i16 -> i16 = get_i16;
    /// Read a big-endian u16.
    get_u16 -> u16 = get_u16;
    /// Read a big-endian i32.
    get_i32 -> i32 = get_i32;
    /// Read a big-endian u32.
    get_u32 -> u32 = get_u32;
    /// Read a big-endian i64.
    get_i64 -> i64 = get_i64;
    /// Read a big-endian IEEE 754 double.
    get_f64 -> f64 = get_f64;
}

/// Read a boolean (any non-zero byte is true, as the Java client reads it).
pub fn get_bool(buf: &mut Bytes, what: &'static str) -> Result<bool, DecodeError> {
    Ok(get_i8(buf, what)? != 0)
}

/// Read a UUID.
pub fn get_uuid(buf: &mut Bytes, what: &'static str) -> Result<Uuid, DecodeError> {
    need(buf, 16, what)?;
    let mut id = [0u8; 16];
    buf.copy_to_slice(&mut id);
    Ok(Uuid(id))
}

/// Read an unsigned LEB128 varint of at most 5 bytes (u32).
pub fn get_unsigned_varint(buf: &mut Bytes, what: &'static str) -> Result<u32, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        need(buf, 1, what)?;
        let b = buf.get_u8();
        if i == 4 && b > 0x0f {
            return Err(DecodeError::BadVarint { what });
        }
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::BadVarint { what })
}

/// Read an unsigned LEB128 varint of at most 10 bytes (u64).
pub fn get_unsigned_varlong(buf: &mut Bytes, what: &'static str) -> Result<u64, DecodeError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        need(buf, 1, what)?;
        let b = buf.get_u8();
        if i == 9 && b > 0x01 {
            return Err(DecodeError::BadVarint { what });
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::BadVarint { what })
}

/// Read a zigzag-encoded signed varint (i32), as used inside records.
pub fn get_varint(buf: &mut Bytes, what: &'static str) -> Result<i32, DecodeError> {
    let v = get_unsigned_varint(buf, what)?;
    Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
}

/// Read a zigzag-encoded signed varlong (i64), as used inside records.
pub fn get_varlong(buf: &mut Bytes, what: &'static str) -> Result<i64, DecodeError> {
    let v = get_unsigned_varlong(buf, what)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

/// Split `n` bytes off the front of `buf` without copying.
pub fn get_slice(buf: &mut Bytes, n: usize, what: &'static str) -> Result<Bytes, DecodeError> {
    need(buf, n, what)?;
    Ok(buf.split_to(n))
}

/// Turn a signed length read off the wire into a size, checked against the
/// bytes left. `None` means the wire said null (-1).
fn checked_len(buf: &Bytes, len: i64, what: &'static str) -> Result<Option<usize>, DecodeError> {
    if len == -1 {
        return Ok(None);
    }
    match usize::try_from(len) {
        Ok(n) if n <= buf.remaining() => Ok(Some(n)),
        _ => Err(DecodeError::InvalidLength {
            what,
            length: len,
            remaining: buf.remaining(),
        }),
    }
}

/// Read the length prefix of a string (`compact`: unsigned varint N+1;
/// otherwise i16). `None` is null.
pub fn get_string_len(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<usize>, DecodeError> {
    let len = if compact {
        i64::from(get_unsigned_varint(buf, what)?) - 1
    } else {
        i64::from(get_i16(buf, what)?)
    };
    checked_len(buf, len, what)
}

/// Read the length prefix of a byte field (`compact`: unsigned varint N+1;
/// otherwise i32). `None` is null.
pub fn get_bytes_len(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<usize>, DecodeError> {
    let len = if compact {
        i64::from(get_unsigned_varint(buf, what)?) - 1
    } else {
        i64::from(get_i32(buf, what)?)
    };
    checked_len(buf, len, what)
}

/// Read the element count of an array (`compact`: unsigned varint N+1;
/// otherwise i32). `None` is null. The count is checked against the bytes
/// left, since every element takes at least one byte.
pub fn get_array_len(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<usize>, DecodeError> {
    get_bytes_len(buf, compact, what)
}

/// Read a nullable string.
pub fn get_nullable_string(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<KString>, DecodeError> {
    match get_string_len(buf, compact, what)? {
        None => Ok(None),
        Some(n) => {
            let raw = buf.split_to(n);
            KString::from_utf8(raw)
                .map(Some)
                .map_err(|_| DecodeError::InvalidUtf8 { what })
        }
    }
}

/// Read a nullable byte field as a slice of the input.
pub fn get_nullable_bytes(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
) -> Result<Option<Bytes>, DecodeError> {
    Ok(get_bytes_len(buf, compact, what)?.map(|n| buf.split_to(n)))
}

/// Read a tagged field's header (tag, size) and split its data off.
pub fn get_tagged_field(buf: &mut Bytes) -> Result<(u32, Bytes), DecodeError> {
    let tag = get_unsigned_varint(buf, "tagged field tag")?;
    let size = get_unsigned_varint(buf, "tagged field size")?;
    let size = usize::try_from(size).map_err(|_| DecodeError::InvalidLength {
        what: "tagged field size",
        length: i64::from(size),
        remaining: buf.remaining(),
    })?;
    let data = get_slice(buf, size, "tagged field data")?;
    Ok((tag, data))
}

/// Write an unsigned LEB128 varint.
pub fn put_unsigned_varint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Write an unsigned LEB128 varlong.
pub fn put_unsigned_varlong(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Write a zigzag-encoded signed varint.
pub fn put_varint(buf: &mut BytesMut, v: i32) {
    put_unsigned_varint(buf, ((v << 1) ^ (v >> 31)) as u32);
}

/// Write a zigzag-encoded signed varlong.
pub fn put_varlong(buf: &mut BytesMut, v: i64) {
    put_unsigned_varlong(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Size in bytes of `v` as an unsigned varint.
pub fn unsigned_varint_len(v: u32) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0xfff_ffff => 4,
        _ => 5,
    }
}

/// Size in bytes of `v` as a zigzag varint.
pub fn varint_len(v: i32) -> usize {
    unsigned_varint_len(((v << 1) ^ (v >> 31)) as u32)
}

/// Size in bytes of `v` as a zigzag varlong.
pub fn varlong_len(v: i64) -> usize {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while u >= 0x80 {
        u >>= 7;
        n += 1;
    }
    n
}

/// Write a length prefix: `compact` is an unsigned varint N+1 (0 for null);
/// otherwise a signed i16 (strings) or i32 (`wide`: bytes, arrays), -1 for
/// null.
fn put_len(
    buf: &mut BytesMut,
    compact: bool,
    wide: bool,
    len: Option<usize>,
    what: &'static str,
) -> Result<(), EncodeError> {
    let too_long = |length| EncodeError::TooLong { what, length };
    match (compact, len) {
        (true, None) => put_unsigned_varint(buf, 0),
        (true, Some(n)) => {
            let n = u32::try_from(n)
                .ok()
                .and_then(|n| n.checked_add(1))
                .ok_or(too_long(n))?;
            put_unsigned_varint(buf, n);
        }
        (false, None) if wide => buf.put_i32(-1),
        (false, None) => buf.put_i16(-1),
        (false, Some(n)) if wide => buf.put_i32(i32::try_from(n).map_err(|_| too_long(n))?),
        (false, Some(n)) => buf.put_i16(i16::try_from(n).map_err(|_| too_long(n))?),
    }
    Ok(())
}

/// Write a length prefix for a string (`compact`: N+1 varint, else i16).
/// `None` writes null.
pub fn put_string_len(
    buf: &mut BytesMut,
    compact: bool,
    len: Option<usize>,
    what: &'static str,
) -> Result<(), EncodeError> {
    put_len(buf, compact, false, len, what)
}

/// Write a length prefix for a byte field or an array count (`compact`: N+1
/// varint, else i32). `None` writes null.
pub fn put_bytes_len(
    buf: &mut BytesMut,
    compact: bool,
    len: Option<usize>,
    what: &'static str,
) -> Result<(), EncodeError> {
    put_len(buf, compact, true, len, what)
}

/// Write an array count; the same encoding as a byte-field length.
pub fn put_array_len(
    buf: &mut BytesMut,
    compact: bool,
    len: Option<usize>,
    what: &'static str,
) -> Result<(), EncodeError> {
    put_bytes_len(buf, compact, len, what)
}

/// Write a nullable string.
pub fn put_nullable_string(
    buf: &mut BytesMut,
    compact: bool,
    s: Option<&str>,
    what: &'static str,
) -> Result<(), EncodeError> {
    put_string_len(buf, compact, s.map(str::len), what)?;
    if let Some(s) = s {
        buf.put_slice(s.as_bytes());
    }
    Ok(())
}

/// Write a nullable byte field.
pub fn put_nullable_bytes(
    buf: &mut BytesMut,
    compact: bool,
    b: Option<&[u8]>,
    what: &'static str,
) -> Result<(), EncodeError> {
    put_bytes_len(buf, compact, b.map(<[u8]>::len), what)?;
    if let Some(b) = b {
        // Room for the fields after a large value too: reserving only the
        // value made the next byte reallocate (and copy) a whole Produce
        // request's records.
        if b.len() > buf.capacity() - buf.len() {
            buf.reserve(b.len() + TRAILER_SLACK);
        }
        buf.put_slice(b);
    }
    Ok(())
}

/// Bytes reserved past a byte field's value for the fields that follow it.
const TRAILER_SLACK: usize = 1024;

/// Write one tagged field: tag, size, then the data.
pub fn put_tagged_field(buf: &mut BytesMut, tag: u32, data: &[u8]) -> Result<(), EncodeError> {
    let size = u32::try_from(data.len()).map_err(|_| EncodeError::TooLong {
        what: "tagged field",
        length: data.len(),
    })?;
    put_unsigned_varint(buf, tag);
    put_unsigned_varint(buf, size);
    buf.put_slice(data);
    Ok(())
}

/// Most bytes an array decoder reserves up front. The element count is
/// already checked against the bytes left, but an element can be much larger
/// in memory than its one byte on the wire; beyond this the `Vec` grows as
/// elements actually decode, so memory stays proportional to the input.
const MAX_PREALLOC_BYTES: usize = 64 * 1024;
/// And at most this many bytes of memory per byte left in the input: a
/// claimed count is not yet data (found by the frame_stream fuzz target:
/// 60 tokens of ~240 bytes each reserved for a 73-byte frame).
const PREALLOC_PER_INPUT_BYTE: usize = 8;

/// How many elements of `T` to reserve for an array of `count` with
/// `left` bytes of input left.
fn prealloc<T>(count: usize, left: usize) -> usize {
    let size = std::mem::size_of::<T>().max(1);
    let budget = MAX_PREALLOC_BYTES.min(left.saturating_mul(PREALLOC_PER_INPUT_BYTE));
    count.min(budget / size)
}

/// Read a non-nullable string: null on the wire is [`DecodeError::UnexpectedNull`].
pub fn get_string(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
    version: i16,
) -> Result<KString, DecodeError> {
    get_nullable_string(buf, compact, what)?.ok_or(DecodeError::UnexpectedNull { what, version })
}

/// Read a non-nullable byte field: null on the wire is
/// [`DecodeError::UnexpectedNull`].
pub fn get_bytes(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
    version: i16,
) -> Result<Bytes, DecodeError> {
    get_nullable_bytes(buf, compact, what)?.ok_or(DecodeError::UnexpectedNull { what, version })
}

/// Read a nullable array, each element with `elem`. The count is checked
/// against the bytes left before anything is allocated.
pub fn get_nullable_array<T>(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
    mut elem: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    let Some(n) = get_array_len(buf, compact, what)? else {
        return Ok(None);
    };
    let mut items = Vec::with_capacity(prealloc::<T>(n, buf.remaining()));
    for _ in 0..n {
        items.push(elem(buf)?);
    }
    Ok(Some(items))
}

/// Read a non-nullable array: null on the wire is
/// [`DecodeError::UnexpectedNull`].
pub fn get_array<T>(
    buf: &mut Bytes,
    compact: bool,
    what: &'static str,
    version: i16,
    elem: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    get_nullable_array(buf, compact, what, elem)?
        .ok_or(DecodeError::UnexpectedNull { what, version })
}

/// Read a nullable struct: an i8 marker (-1 null, otherwise present), then
/// the struct.
pub fn get_nullable_struct<T>(
    buf: &mut Bytes,
    what: &'static str,
    decode: impl FnOnce(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    // Kafka writes -1 (null) or 1 (present). Readers disagree on other
    // values (Java takes any non-negative as present, kafka-protocol anything
    // but 1 as null), so they are refused rather than guessed.
    match get_i8(buf, what)? {
        -1 => Ok(None),
        1 => decode(buf).map(Some),
        other => Err(DecodeError::InvalidValue {
            what,
            detail: format!("nullable struct marker {other} (expected -1 or 1)"),
        }),
    }
}

/// Read the tagged-field section of a flexible struct. `known` gets each
/// tag with its data and returns `Ok(true)` when it decoded the field (which
/// must then use all of the data); other tags are kept in `unknown`.
pub fn get_tagged_fields(
    buf: &mut Bytes,
    what: &'static str,
    unknown: &mut Vec<RawTaggedField>,
    mut known: impl FnMut(u32, &mut Bytes) -> Result<bool, DecodeError>,
) -> Result<(), DecodeError> {
    let count = get_unsigned_varint(buf, what)?;
    let mut previous: Option<u32> = None;
    for _ in 0..count {
        let (tag, data) = get_tagged_field(buf)?;
        // KIP-482: tags are strictly ascending. A repeated tag would be
        // ambiguous (which value wins?), so it is refused, not guessed.
        if previous.is_some_and(|p| tag <= p) {
            return Err(DecodeError::InvalidValue {
                what,
                detail: format!(
                    "tag {tag} after tag {} (tags must strictly ascend)",
                    previous.unwrap_or(0)
                ),
            });
        }
        previous = Some(tag);
        let mut field = data.clone();
        if known(tag, &mut field)? {
            if !field.is_empty() {
                return Err(DecodeError::TrailingBytes {
                    what,
                    remaining: field.len(),
                });
            }
        } else {
            unknown.push(RawTaggedField { tag, data });
        }
    }
    Ok(())
}

/// Write a non-nullable string.
pub fn put_string(
    buf: &mut BytesMut,
    compact: bool,
    s: &str,
    what: &'static str,
) -> Result<(), EncodeError> {
    put_nullable_string(buf, compact, Some(s), what)
}

/// Write a nullable array, each element with `elem`.
pub fn put_array<T>(
    buf: &mut BytesMut,
    compact: bool,
    items: Option<&[T]>,
    what: &'static str,
    mut elem: impl FnMut(&mut BytesMut, &T) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    put_array_len(buf, compact, items.map(<[T]>::len), what)?;
    for item in items.unwrap_or_default() {
        elem(buf, item)?;
    }
    Ok(())
}

/// Write the tagged-field section of a flexible struct: the known fields
/// (already encoded, ascending by tag) and the unknown ones kept from a
/// decode, merged in ascending tag order as Kafka requires.
pub fn put_tagged_fields(
    buf: &mut BytesMut,
    known: Vec<(u32, Bytes)>,
    unknown: &[RawTaggedField],
) -> Result<(), EncodeError> {
    let total = known.len() + unknown.len();
    let count = u32::try_from(total).map_err(|_| EncodeError::TooLong {
        what: "tagged fields",
        length: total,
    })?;
    put_unsigned_varint(buf, count);
    if unknown.is_empty() {
        for (tag, data) in &known {
            put_tagged_field(buf, *tag, data)?;
        }
        return Ok(());
    }
    let mut all: Vec<(u32, &[u8])> = known
        .iter()
        .map(|(t, d)| (*t, &d[..]))
        .chain(unknown.iter().map(|f| (f.tag, &f.data[..])))
        .collect();
    all.sort_by_key(|(t, _)| *t);
    if let Some(w) = all.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(EncodeError::InvalidValue {
            what: "tagged fields",
            detail: format!(
                "tag {} appears twice (unknown_tagged_fields repeats a tag)",
                w[0].0
            ),
        });
    }
    for (tag, data) in all {
        put_tagged_field(buf, tag, data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A claimed element count reserves memory in proportion to the bytes
    /// left, not to the count times a large element.
    #[test]
    fn arrays_reserve_in_proportion_to_the_input_left() {
        type Big = [u64; 30];
        assert_eq!(prealloc::<Big>(60, 60), 60 * 8 / 240);
        assert!(prealloc::<Big>(60, 60) * std::mem::size_of::<Big>() <= 8 * 60);
        assert_eq!(prealloc::<u8>(100, 100), 100);
        assert_eq!(prealloc::<Big>(1 << 20, 1 << 20), (64 << 10) / 240);
    }
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varint_roundtrip(v: i32) {
            let mut b = BytesMut::new();
            put_varint(&mut b, v);
            prop_assert_eq!(b.len(), varint_len(v));
            let mut r = b.freeze();
            prop_assert_eq!(get_varint(&mut r, "v").unwrap(), v);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn varlong_roundtrip(v: i64) {
            let mut b = BytesMut::new();
            put_varlong(&mut b, v);
            prop_assert_eq!(b.len(), varlong_len(v));
            let mut r = b.freeze();
            prop_assert_eq!(get_varlong(&mut r, "v").unwrap(), v);
        }

        #[test]
        fn unsigned_varint_roundtrip(v: u32) {
            let mut b = BytesMut::new();
            put_unsigned_varint(&mut b, v);
            prop_assert_eq!(b.len(), unsigned_varint_len(v));
            let mut r = b.freeze();
            prop_assert_eq!(get_unsigned_varint(&mut r, "v").unwrap(), v);
        }

        #[test]
        fn readers_never_panic(data: Vec<u8>, compact: bool) {
            let mut b = Bytes::from(data);
            let _ = get_nullable_string(&mut b, compact, "s");
            let _ = get_nullable_bytes(&mut b, compact, "b");
            let _ = get_array_len(&mut b, compact, "a");
            let _ = get_tagged_field(&mut b);
            let _ = get_varlong(&mut b, "v");
        }
    }

    #[test]
    fn huge_count_is_refused_before_allocation() {
        let mut b = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 0, 0]);
        let err = get_array_len(&mut b, false, "topics").unwrap_err();
        assert!(matches!(
            err,
            DecodeError::InvalidLength {
                length: 2147483647,
                ..
            }
        ));
    }

    #[test]
    fn tagged_fields_must_ascend_and_not_repeat() {
        let mut b = Bytes::from_static(&[2, 1, 0, 1, 0]);
        let mut unknown = Vec::new();
        let err = get_tagged_fields(&mut b, "t", &mut unknown, |_, _| Ok(false)).unwrap_err();
        assert!(err.to_string().contains("tag 1 after tag 1"), "{err}");
        let dup = [
            RawTaggedField {
                tag: 3,
                data: Bytes::new(),
            },
            RawTaggedField {
                tag: 3,
                data: Bytes::new(),
            },
        ];
        assert!(put_tagged_fields(&mut BytesMut::new(), Vec::new(), &dup).is_err());
        let mut b = Bytes::from_static(&[2, 1, 0, 4, 1, 9]);
        let mut unknown = Vec::new();
        get_tagged_fields(&mut b, "t", &mut unknown, |_, _| Ok(false)).unwrap();
        assert_eq!(unknown.len(), 2);
    }

    #[test]
    fn nullable_struct_marker_is_minus_one_or_one() {
        let read = |bytes: &'static [u8]| {
            get_nullable_struct(&mut Bytes::from_static(bytes), "s", |b| get_i8(b, "x"))
        };
        assert_eq!(read(&[0xff]).unwrap(), None);
        assert_eq!(read(&[1, 7]).unwrap(), Some(7));
        assert!(read(&[0, 7]).is_err());
        assert!(read(&[8, 7]).is_err());
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(matches!(
            get_unsigned_varint(&mut b, "v"),
            Err(DecodeError::BadVarint { .. })
        ));
    }

    #[test]
    fn string_must_be_utf8_and_shares_the_buffer() {
        let input = Bytes::from_static(&[0, 2, b'h', b'i', 0, 1, 0xff]);
        let mut b = input.clone();
        let s = get_nullable_string(&mut b, false, "s").unwrap().unwrap();
        assert_eq!(s, "hi");
        assert_eq!(s.as_bytes().as_ptr(), input[2..].as_ptr());
        assert!(matches!(
            get_nullable_string(&mut b, false, "s"),
            Err(DecodeError::InvalidUtf8 { .. })
        ));
    }
}
