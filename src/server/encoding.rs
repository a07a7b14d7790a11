//! Content codings of a served list (issue 25): which ones exist, how each is made, and which
//! one a request's `Accept-Encoding` gets (RFC 9110 §12.5.3).
//!
//! A list is compressed once per version and served thousands of times, so the levels are
//! chosen for the fewest bytes, by measurement on a 10 000-Zorgaanbieder ZAL (42.8 MB;
//! `examples/encodings.rs`): gzip 9 is 0.62 MB in 0.2 s; brotli quality 8 with a 16 MB window
//! 0.40 MB in 0.6 s, where quality 11 is 0.42 MB in 64 s; zstd 12 0.35 MB in 0.24 s, where 19
//! is 0.51 MB in 16 s. On this very repetitive XML the optimal-parsing levels (brotli 10–11,
//! zstd 16+) are both larger and a hundred times slower.

use std::io::Write;

/// A content coding the node can serve a list in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
    Zstd,
}

impl Encoding {
    /// The codings made after a version is served, in the order they are made.
    pub const LATER: [Encoding; 3] = [Encoding::Gzip, Encoding::Zstd, Encoding::Brotli];

    /// The token in `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
        }
    }

    /// Compresses `bytes` in this coding at its chosen level (CPU work: call off the async
    /// threads). Identity is `bytes` itself.
    pub fn encode(self, bytes: &[u8]) -> Vec<u8> {
        const WRITE: &str = "writing to memory cannot fail";
        match self {
            Encoding::Identity => bytes.to_vec(),
            Encoding::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(bytes.len() / 32),
                    flate2::Compression::best(),
                );
                // In pieces, yielding to publications between them; deflate's output does not
                // depend on how its input is divided.
                for piece in bytes.chunks(1 << 20) {
                    crate::background::yield_to_urgent();
                    encoder.write_all(piece).expect(WRITE);
                }
                encoder.finish().expect(WRITE)
            }
            Encoding::Brotli => {
                let params = brotli::enc::BrotliEncoderParams {
                    quality: 8,
                    lgwin: 24,
                    size_hint: bytes.len(),
                    ..Default::default()
                };
                let mut out = Vec::with_capacity(bytes.len() / 32);
                let mut input = Yielding(bytes);
                brotli::BrotliCompress(&mut input, &mut out, &params).expect(WRITE);
                out
            }
            Encoding::Zstd => zstd::bulk::compress(bytes, 12).expect(WRITE),
        }
    }
}

/// Bytes read as a slice reads them, yielding to publications before each read.
struct Yielding<'a>(&'a [u8]);

impl std::io::Read for Yielding<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        crate::background::yield_to_urgent();
        self.0.read(buf)
    }
}

/// Most `Accept-Encoding` a request may list before the rest is ignored.
const MOST_CODINGS: usize = 16;

/// The q-value (in thousandths) a request's `Accept-Encoding` values give each coding. Made
/// per request, so it borrows the header and allocates nothing.
#[derive(Debug, Default)]
pub struct Accepted<'a> {
    /// False when the request has no `Accept-Encoding` at all.
    present: bool,
    listed: [(&'a str, u16); MOST_CODINGS],
    count: usize,
}

impl<'a> Accepted<'a> {
    pub fn parse(values: impl Iterator<Item = &'a str>) -> Self {
        let mut accepted = Accepted::default();
        for coding in values.flat_map(|v| v.split(',')).take(MOST_CODINGS) {
            accepted.present = true;
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            if name.is_empty() {
                continue;
            }
            let q = parts
                .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .map_or(Some(1000), parse_q);
            // A malformed q-value makes its coding unusable, never accepted.
            let name = if name.eq_ignore_ascii_case("x-gzip") {
                "gzip"
            } else {
                name
            };
            if let Some(slot) = accepted.listed.get_mut(accepted.count) {
                *slot = (name, q.unwrap_or(0));
                accepted.count += 1;
            }
        }
        accepted
    }

    /// How acceptable `encoding` is: its own q-value, else that of `*`; identity is
    /// acceptable unless refused; other codings only when listed.
    fn q(&self, encoding: Encoding) -> u16 {
        let of = |name: &str| {
            self.listed
                .iter()
                .take(self.count)
                .find(|(listed, _)| listed.eq_ignore_ascii_case(name))
                .map(|(_, q)| *q)
        };
        of(encoding.token())
            .or_else(|| of("*"))
            .unwrap_or(match encoding {
                Encoding::Identity => 1000,
                _ => 0,
            })
    }

    /// The representation to send among `available` (coding and size; identity always
    /// among them): the most acceptable, the smallest among equals. Without
    /// `Accept-Encoding`, identity, as clients that never asked for compression expect. When
    /// nothing is acceptable, identity as well (RFC 9110 allows it; a 406 helps no one).
    pub fn choose(&self, available: impl Iterator<Item = (Encoding, usize)>) -> Encoding {
        if !self.present {
            return Encoding::Identity;
        }
        available
            .map(|(encoding, size)| (self.q(encoding), encoding, size))
            .filter(|(q, _, _)| *q > 0)
            .max_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)))
            .map_or(Encoding::Identity, |(_, encoding, _)| encoding)
    }
}

/// `0`, `0.5`, `1.000`: at most three decimals, at most 1 (RFC 9110 §12.4.2).
fn parse_q(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [(Encoding, usize); 4] = [
        (Encoding::Identity, 42_000_000),
        (Encoding::Gzip, 620_000),
        (Encoding::Brotli, 400_000),
        (Encoding::Zstd, 354_000),
    ];

    fn chosen(header: Option<&str>, available: &[(Encoding, usize)]) -> Encoding {
        Accepted::parse(header.into_iter()).choose(available.iter().copied())
    }

    #[test]
    fn the_most_acceptable_then_the_smallest_coding_is_chosen() {
        let cases = [
            (None, Encoding::Identity),
            (Some(""), Encoding::Identity),
            (Some("gzip"), Encoding::Gzip),
            (Some("x-gzip"), Encoding::Gzip),
            (Some("GZIP"), Encoding::Gzip),
            (Some("gzip, deflate, br"), Encoding::Brotli),
            (Some("gzip, deflate, br, zstd"), Encoding::Zstd),
            (Some("zstd;q=0.5, gzip"), Encoding::Gzip),
            (Some("br;q=1.0, gzip;q=0.8, *;q=0.1"), Encoding::Brotli),
            (Some("*"), Encoding::Zstd),
            (Some("*;q=0.5, gzip;q=0"), Encoding::Zstd),
            (Some("gzip;q=0"), Encoding::Identity),
            (Some("identity"), Encoding::Identity),
            // Malformed q-values refuse their coding.
            (Some("gzip;q=2, br;q=0.1234"), Encoding::Identity),
            (Some("gzip;q=abc"), Encoding::Identity),
            // Nothing acceptable, not even identity: identity all the same.
            (Some("identity;q=0, *;q=0"), Encoding::Identity),
            (Some("identity;q=0, deflate"), Encoding::Identity),
        ];
        for (header, expected) in cases {
            assert_eq!(chosen(header, &ALL), expected, "{header:?}");
        }
    }

    #[test]
    fn only_codings_already_made_are_chosen() {
        let first = [ALL[0], ALL[1]];
        assert_eq!(chosen(Some("br, zstd"), &first), Encoding::Identity);
        assert_eq!(chosen(Some("br, zstd, gzip"), &first), Encoding::Gzip);
        // Identity, unlisted, is fully acceptable (RFC 9110 §12.5.3).
        assert_eq!(chosen(Some("br, gzip;q=0.1"), &first), Encoding::Identity);
    }

    #[test]
    fn q_values_have_at_most_three_decimals_and_at_most_one() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.001"), Some(1));
        assert_eq!(parse_q("0"), Some(0));
        for bad in ["1.001", "2", "0.0001", "-1", "", ".5", "0.x"] {
            assert_eq!(parse_q(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_coding_decodes_to_the_same_bytes() {
        let document = b"<Zorgaanbiederslijst>".repeat(2000);
        for encoding in Encoding::LATER {
            let encoded = encoding.encode(&document);
            let decoded = match encoding {
                Encoding::Gzip => {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(encoded.as_slice()),
                        &mut out,
                    )
                    .unwrap();
                    out
                }
                Encoding::Brotli => {
                    let mut out = Vec::new();
                    brotli::BrotliDecompress(&mut encoded.as_slice(), &mut out).unwrap();
                    out
                }
                Encoding::Zstd => zstd::decode_all(encoded.as_slice()).unwrap(),
                Encoding::Identity => unreachable!("not made later"),
            };
            assert_eq!(decoded, document, "{encoding:?}");
            assert!(encoded.len() < document.len() / 10, "{encoding:?}");
        }
    }
}
