//! Compression codecs of record batches, each behind its cargo feature.
//!
//! Decompression is bounded: output is read in chunks into a buffer that
//! grows as data actually comes out, up to a limit, and is never sized from a
//! length the compressed data declares (except where the format makes such a
//! length provably bounded by the input, see the snappy module). A codec
//! whose feature is off gives an error naming the codec and the feature.

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};

#[cfg(feature = "gzip")]
mod gzip;
#[cfg(feature = "lz4")]
pub(crate) mod lz4;
#[cfg(feature = "snappy")]
mod snappy;
#[cfg(any(feature = "zstd", feature = "zstd-c"))]
mod zstd;

/// A compression codec of a record batch (attribute bits 0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip (RFC 1952), through `flate2` with the pure-Rust zlib-rs backend.
    Gzip,
    /// snappy; read raw or in the xerial framing, written in xerial framing
    /// as the Java client does.
    Snappy,
    /// LZ4 frame format, through `lz4_flex`.
    Lz4,
    /// zstd (magic 2 only), through `ruzstd`, or the C library with the
    /// `zstd-c` feature.
    Zstd,
}

impl Compression {
    /// All codecs, in attribute order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec of a batch's attributes (bits 0–2); values 5–7 are invalid.
    pub fn from_attributes(attributes: i16) -> Result<Self, DecodeError> {
        match attributes & 0x07 {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(DecodeError::InvalidValue {
                what: "record batch compression",
                detail: format!("unknown compression codec id {other}"),
            }),
        }
    }

    /// The codec's id in the attributes.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec's name as Kafka's `compression.type` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The cargo feature of `krust-codec` that provides the codec.
    fn feature(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd\" or \"zstd-c",
        }
    }

    /// True when this build can compress and decompress with the codec.
    pub fn is_available(self) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Snappy => cfg!(feature = "snappy"),
            Compression::Lz4 => cfg!(feature = "lz4"),
            Compression::Zstd => cfg!(any(feature = "zstd", feature = "zstd-c")),
        }
    }

    fn not_compiled(self) -> String {
        format!(
            "{} support is not compiled in (enable the \"{}\" feature of krust-codec)",
            self.name(),
            self.feature()
        )
    }

    /// Decompress `input`, producing at most `limit` bytes; more is a
    /// [`DecodeError::Decompression`].
    pub fn decompress(self, input: &Bytes, limit: usize) -> Result<Bytes, DecodeError> {
        match self {
            Compression::None => {
                if input.len() > limit {
                    return Err(over_limit("none", limit));
                }
                Ok(input.clone())
            }
            #[cfg(feature = "gzip")]
            Compression::Gzip => gzip::decompress(input, limit),
            #[cfg(feature = "snappy")]
            Compression::Snappy => snappy::decompress(input, limit),
            #[cfg(feature = "lz4")]
            Compression::Lz4 => lz4::decompress(input, limit),
            #[cfg(any(feature = "zstd", feature = "zstd-c"))]
            Compression::Zstd => zstd::decompress(input, limit),
            #[allow(unreachable_patterns)]
            other => Err(DecodeError::Decompression {
                codec: other.name(),
                detail: other.not_compiled(),
            }),
        }
    }

    /// Compress `input`, appending the result to `out`.
    pub fn compress(self, input: &[u8], out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Compression::None => {
                out.extend_from_slice(input);
                Ok(())
            }
            #[cfg(feature = "gzip")]
            Compression::Gzip => gzip::compress(input, out),
            #[cfg(feature = "snappy")]
            Compression::Snappy => snappy::compress(input, out),
            #[cfg(feature = "lz4")]
            Compression::Lz4 => lz4::compress(input, out),
            #[cfg(any(feature = "zstd", feature = "zstd-c"))]
            Compression::Zstd => zstd::compress(input, out),
            #[allow(unreachable_patterns)]
            other => Err(EncodeError::Compression {
                codec: other.name(),
                detail: other.not_compiled(),
            }),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for output past the limit.
pub(crate) fn over_limit(codec: &'static str, limit: usize) -> DecodeError {
    DecodeError::Decompression {
        codec,
        detail: format!("decompressed data exceeds the limit of {limit} bytes"),
    }
}

/// Map an I/O error of a decoder.
#[allow(dead_code)] // unused when no codec feature is enabled
pub(crate) fn io_error(codec: &'static str, e: std::io::Error) -> DecodeError {
    DecodeError::Decompression {
        codec,
        detail: e.to_string(),
    }
}

/// Read everything `reader` produces, growing the output as data comes out
/// (starting from a guess based on the compressed size, never from a size the
/// data declares) and failing once more than `limit` bytes came out.
///
/// Reads go through `read()` into large slices: for lz4 frames this is an
/// order of magnitude faster than `read_to_end`.
#[allow(dead_code)] // unused when no streaming codec feature is enabled
pub(crate) fn read_bounded<R: std::io::Read>(
    mut reader: R,
    codec: &'static str,
    compressed_len: usize,
    limit: usize,
) -> Result<Bytes, DecodeError> {
    // One byte past the limit is room to notice that the limit was exceeded.
    let cap = limit.saturating_add(1);
    let mut out = vec![
        0u8;
        compressed_len
            .saturating_mul(4)
            .clamp(1024, 1 << 20)
            .min(cap)
    ];
    let mut filled = 0;
    loop {
        if filled == out.len() {
            if out.len() >= cap {
                return Err(over_limit(codec, limit));
            }
            let grown = out.len().saturating_mul(2).min(cap);
            out.resize(grown, 0);
        }
        match reader.read(&mut out[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(codec, e)),
        }
    }
    if filled > limit {
        return Err(over_limit(codec, limit));
    }
    out.truncate(filled);
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| format!("{{\"id\":{i},\"name\":\"rec{}\"}}", i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn every_available_codec_round_trips_and_is_bounded() {
        let data = sample();
        for codec in Compression::ALL {
            if !codec.is_available() {
                continue;
            }
            let mut out = BytesMut::new();
            codec.compress(&data, &mut out).unwrap();
            let out = out.freeze();
            let back = codec.decompress(&out, data.len()).unwrap();
            assert_eq!(&back[..], &data[..], "{codec}");
            let err = codec.decompress(&out, data.len() - 1).unwrap_err();
            assert!(
                matches!(err, DecodeError::Decompression { .. }),
                "{codec}: {err}"
            );
            let empty = {
                let mut e = BytesMut::new();
                codec.compress(&[], &mut e).unwrap();
                e.freeze()
            };
            assert!(codec.decompress(&empty, 0).unwrap().is_empty(), "{codec}");
        }
    }

    #[test]
    fn a_bomb_is_refused() {
        let data = vec![0u8; 8 << 20];
        for codec in Compression::ALL {
            if !codec.is_available() || codec == Compression::None {
                continue;
            }
            let mut out = BytesMut::new();
            codec.compress(&data, &mut out).unwrap();
            assert!(out.len() < data.len() / 20, "{codec} {}", out.len());
            let err = codec.decompress(&out.freeze(), 1 << 20).unwrap_err();
            assert!(matches!(err, DecodeError::Decompression { .. }), "{codec}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let garbage =
            Bytes::from_static(b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01\x7f\xff\xff\xffnot compressed");
        for codec in Compression::ALL {
            if !codec.is_available() || codec == Compression::None {
                continue;
            }
            assert!(codec.decompress(&garbage, 1 << 20).is_err(), "{codec}");
        }
    }

    #[test]
    fn unknown_codec_ids_are_rejected() {
        for id in 0..8i16 {
            let c = Compression::from_attributes(id | 0x70);
            assert_eq!(c.is_ok(), id < 5);
            if let Ok(c) = c {
                assert_eq!(c.id(), id);
            }
        }
    }
}
