//! Request bodies as Sentry SDKs compress them: gzip, deflate (zlib-wrapped or raw), br, or
//! nothing. Empty and unknown `Content-Encoding` values, which some SDKs send, mean none. The
//! output is capped, so a small compressed body cannot expand without bound (a bomb).

use std::io::Read;

use bytes::Bytes;

use crate::error::Error;

/// Decompresses `body` according to `content_encoding`, producing at most `limit` bytes.
pub fn decode(body: Bytes, content_encoding: &str, limit: usize) -> Result<Bytes, Error> {
    let mut out = body;
    // Encodings are listed in the order they were applied: undo them last to first.
    for coding in content_encoding
        .rsplit(',')
        .map(|c| c.trim().to_ascii_lowercase())
    {
        out = match coding.as_str() {
            "gzip" | "x-gzip" => {
                read_capped(flate2::read::MultiGzDecoder::new(&out[..]), limit, "gzip")?
            }
            "deflate" => inflate(&out, limit)?,
            "br" => read_capped(brotli::Decompressor::new(&out[..], 4096), limit, "br")?,
            // Empty, identity or bogus: the body is taken as sent, unless it is plainly gzip
            // (SDKs behind proxies that drop the header).
            _ if out.starts_with(&[0x1f, 0x8b]) => {
                read_capped(flate2::read::MultiGzDecoder::new(&out[..]), limit, "gzip")?
            }
            _ => out,
        };
    }
    if out.len() > limit {
        return Err(Error::PayloadTooLarge { limit });
    }
    Ok(out)
}

/// HTTP `deflate` is zlib-wrapped by the standard, raw deflate by some clients: try both.
fn inflate(body: &[u8], limit: usize) -> Result<Bytes, Error> {
    match read_capped(flate2::read::ZlibDecoder::new(body), limit, "deflate") {
        Err(Error::Malformed { .. }) => {
            read_capped(flate2::read::DeflateDecoder::new(body), limit, "deflate")
        }
        other => other,
    }
}

fn read_capped(reader: impl Read, limit: usize, coding: &str) -> Result<Bytes, Error> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(cap).read_to_end(&mut out).map_err(|e| {
        Error::malformed(
            "body",
            format!("the body is not valid {coding} data (Content-Encoding: {coding}): {e}"),
        )
    })?;
    if out.len() > limit {
        return Err(Error::PayloadTooLarge { limit });
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const TEXT: &[u8] = b"{\"event_id\":\"abc\"}\n{\"type\":\"event\"}\n{}\n";

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_deflate_brotli_and_none() {
        assert_eq!(
            &decode(Bytes::from(gzip(TEXT)), "gzip", 1000).unwrap()[..],
            TEXT
        );

        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(TEXT).unwrap();
        assert_eq!(
            &decode(Bytes::from(z.finish().unwrap()), "deflate", 1000).unwrap()[..],
            TEXT
        );

        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(TEXT).unwrap();
        assert_eq!(
            &decode(Bytes::from(raw.finish().unwrap()), "Deflate", 1000).unwrap()[..],
            TEXT
        );

        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(TEXT).unwrap();
        }
        assert_eq!(&decode(Bytes::from(br), "br", 1000).unwrap()[..], TEXT);

        for none in ["", "identity", "bogus", "utf-8"] {
            assert_eq!(
                &decode(Bytes::from_static(TEXT), none, 1000).unwrap()[..],
                TEXT
            );
        }
        // gzip sent without (or with a bogus) Content-Encoding is still recognised.
        assert_eq!(
            &decode(Bytes::from(gzip(TEXT)), "", 1000).unwrap()[..],
            TEXT
        );
    }

    #[test]
    fn a_bomb_is_stopped_at_the_limit() {
        let zeros = vec![0u8; 50 * 1024 * 1024];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 100 * 1024);
        let e = decode(Bytes::from(bomb), "gzip", 20 * 1024 * 1024).unwrap_err();
        assert!(matches!(e, Error::PayloadTooLarge { .. }), "{e:?}");
    }

    #[test]
    fn corrupt_data_is_malformed() {
        for coding in ["gzip", "deflate", "br"] {
            let e = decode(
                Bytes::from_static(b"\x1f\x8b\x08garbage-not-compressed"),
                coding,
                1000,
            )
            .unwrap_err();
            assert!(matches!(e, Error::Malformed { .. }), "{coding}: {e:?}");
        }
    }
}
