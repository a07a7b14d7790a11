//! A bundle's `MANIFEST`: what the bundle covers and every file in it with its SHA-256 and
//! size, as deterministic text (same bundle, same bytes). Parsed strictly: the verifier reads
//! it from a directory it does not trust until the signature and digests say so.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::ListKind;

/// The first line, with the format's number: 1 holds versions and the SLA report; 2 adds
/// what a restore needs (mutations, the audit log, the working state; issue 23); 3 the
/// transparency log's leaves and checkpoint (issue 26).
const MAGIC: &str = "stelselnode-archive-bundle";
pub const FORMATS: [u8; 3] = [1, 2, 3];
pub const CURRENT_FORMAT: u8 = 3;
/// Bounds on what a manifest may hold, so a hostile one cannot exhaust memory.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;
const MAX_PATH_CHARS: usize = 200;

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// One of `FORMATS`.
    pub format: u8,
    /// Versions published from this instant (`None`: from the first one).
    pub covers_from: Option<DateTime<Utc>>,
    /// … up to (not including) this one.
    pub covers_up_to: DateTime<Utc>,
    /// A verifier refuses the bundle after this instant: a newer one should exist by then
    /// (freeze).
    pub expires: DateTime<Utc>,
    /// The SHA-256 of the previous bundle's MANIFEST: bundles chain.
    pub previous_manifest: Option<String>,
    /// Per list the first and last Volgnummer in the bundle (`None`: no version).
    pub volgnummers: BTreeMap<ListKind, Option<(i64, i64)>>,
    /// Sorted by path.
    pub files: Vec<ManifestFile>,
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl Manifest {
    pub fn render(&self) -> String {
        let mut out = format!("{MAGIC} {}\n", self.format);
        out.push_str(&format!(
            "covers-from {}\n",
            self.covers_from.map_or("beginning".into(), instant)
        ));
        out.push_str(&format!("covers-up-to {}\n", instant(self.covers_up_to)));
        out.push_str(&format!("expires {}\n", instant(self.expires)));
        out.push_str(&format!(
            "previous-manifest-sha256 {}\n",
            self.previous_manifest.as_deref().unwrap_or("none")
        ));
        for list in ListKind::ALL {
            match self.volgnummers.get(&list).copied().flatten() {
                Some((first, last)) => {
                    out.push_str(&format!("volgnummers {list} {first}-{last}\n"));
                }
                None => out.push_str(&format!("volgnummers {list} none\n")),
            }
        }
        for f in &self.files {
            out.push_str(&format!("file {} {} {}\n", f.sha256, f.size, f.path));
        }
        out
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        let format = lines
            .next()
            .and_then(|first| first.strip_prefix(MAGIC)?.strip_prefix(' '))
            .and_then(|n| FORMATS.into_iter().find(|f| f.to_string() == n))
            .ok_or_else(|| format!("the MANIFEST does not start with \"{MAGIC} <1, 2 or 3>\""))?;
        let mut field = |name: &str| -> Result<String, String> {
            let line = lines.next().unwrap_or_default();
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or_else(|| format!("the MANIFEST line \"{name} …\" is missing or out of order"))
        };
        let parse_instant = |value: &str, name: &str| {
            DateTime::parse_from_rfc3339(value)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| format!("MANIFEST {name} is not an RFC 3339 instant"))
        };
        let covers_from = match field("covers-from")?.as_str() {
            "beginning" => None,
            value => Some(parse_instant(value, "covers-from")?),
        };
        let covers_up_to = parse_instant(&field("covers-up-to")?, "covers-up-to")?;
        let expires = parse_instant(&field("expires")?, "expires")?;
        let previous_manifest = match field("previous-manifest-sha256")?.as_str() {
            "none" => None,
            digest if is_sha256(digest) => Some(digest.to_owned()),
            _ => return Err("MANIFEST previous-manifest-sha256 is not a SHA-256".into()),
        };
        let mut volgnummers = BTreeMap::new();
        for list in ListKind::ALL {
            let value = field("volgnummers")?;
            let (name, range) = value.split_once(' ').unwrap_or((value.as_str(), ""));
            if name != list.as_str() {
                return Err(format!("MANIFEST volgnummers of {list} are missing"));
            }
            let range = match range {
                "none" => None,
                range => {
                    let (first, last) = range
                        .split_once('-')
                        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                        .filter(|(a, b): &(i64, i64)| 1 <= *a && a <= b)
                        .ok_or_else(|| format!("MANIFEST volgnummers of {list} are not a range"))?;
                    Some((first, last))
                }
            };
            volgnummers.insert(list, range);
        }
        let mut files: Vec<ManifestFile> = Vec::new();
        for line in lines {
            let mut parts = line.splitn(4, ' ');
            let (Some("file"), Some(sha256), Some(size), Some(path)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("MANIFEST line not understood: {}", printable(line)));
            };
            if !is_sha256(sha256) || !is_bundle_path(path) {
                return Err(format!("MANIFEST line not understood: {}", printable(line)));
            }
            let size = size
                .parse()
                .map_err(|_| format!("MANIFEST size of {path} is not a number"))?;
            if files.last().is_some_and(|last| last.path.as_str() >= path) {
                return Err(format!("MANIFEST files are not sorted or repeat at {path}"));
            }
            files.push(ManifestFile {
                path: path.to_owned(),
                sha256: sha256.to_owned(),
                size,
            });
        }
        Ok(Self {
            format,
            covers_from,
            covers_up_to,
            expires,
            previous_manifest,
            volgnummers,
            files,
        })
    }
}

pub fn is_sha256(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A path inside a bundle: relative, `/`-separated, of lowercase letters, digits, `.`, `_`
/// and `-`, no empty, `.` or `..` component — so it can never point outside the bundle.
pub fn is_bundle_path(path: &str) -> bool {
    path.len() <= MAX_PATH_CHARS
        && path.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        })
        && !path.starts_with('.')
}

/// At most 80 printable characters of untrusted text, for a message.
pub fn printable(text: &str) -> String {
    text.chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_as_written() {
        let manifest = Manifest {
            format: CURRENT_FORMAT,
            covers_from: None,
            covers_up_to: "2026-11-25T23:00:00Z".parse().unwrap(),
            expires: "2026-11-27T23:00:00Z".parse().unwrap(),
            previous_manifest: Some("ab".repeat(32)),
            volgnummers: ListKind::ALL
                .into_iter()
                .map(|l| (l, (l == ListKind::Zal).then_some((3, 9))))
                .collect(),
            files: vec![
                ManifestFile {
                    path: "bodies/x.gz".into(),
                    sha256: "0".repeat(64),
                    size: 12,
                },
                ManifestFile {
                    path: "versions/zal/0000000003.json".into(),
                    sha256: "1".repeat(64),
                    size: 400,
                },
            ],
        };
        let text = manifest.render();
        assert_eq!(Manifest::parse(&text).unwrap(), manifest);
        assert!(text.contains("volgnummers zal 3-9\nvolgnummers ocl none\n"));
        for format in FORMATS {
            let older = text.replacen("bundle 3\n", &format!("bundle {format}\n"), 1);
            assert_eq!(Manifest::parse(&older).unwrap().format, format);
        }
        for unknown in ["0", "4", "03", "3 "] {
            let unknown = text.replacen("bundle 3\n", &format!("bundle {unknown}\n"), 1);
            assert!(Manifest::parse(&unknown).is_err(), "{unknown}");
        }
    }

    #[test]
    fn paths_never_leave_the_bundle() {
        for bad in [
            "../x",
            "/etc/passwd",
            "a//b",
            "a/./b",
            ".hidden",
            "A.xml",
            "a b",
        ] {
            assert!(!is_bundle_path(bad), "{bad}");
        }
        assert!(is_bundle_path("versions/zal/0000000001.header"));
    }
}
