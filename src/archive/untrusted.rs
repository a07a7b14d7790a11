//! Reading a bundle directory nobody vouches for yet (issue 21): a bundle an auditor got from
//! a share, a USB stick or a mail. Only regular files inside the directory count — no path
//! component may be a symbolic link (so nothing outside is ever opened), devices and FIFOs
//! are refused before a byte is read (a FIFO would block, `/dev/zero` never ends) — and every
//! read stops at a cap the caller states, whatever the file's length claims.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use sha2::{Digest, Sha256};

use super::manifest::printable;
use crate::signing::hex;

/// Why a file of the bundle was not read, in words an auditor can act on.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error("{0} is missing")]
    Missing(String),
    #[error("{0} is a symbolic link (only regular files inside the bundle count)")]
    Symlink(String),
    #[error("{path} is {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path} is larger than {cap} bytes")]
    TooLarge { path: String, cap: u64 },
    #[error("{path} cannot be read: {message}")]
    Unreadable { path: String, message: String },
}

/// An io error's words without the "(os error N)" suffix std adds.
pub(super) fn words(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

fn kind_of(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// A bundle directory, read defensively. Paths are bundle paths (`/`-separated, relative);
/// the directory itself is the one the auditor named.
pub struct BundleDir {
    root: PathBuf,
}

impl BundleDir {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// Opens a regular file inside the bundle without following any symbolic link and without
    /// blocking on a FIFO.
    pub fn open(&self, path: &str) -> Result<File, FileProblem> {
        let shown = printable(path);
        let unreadable = |e: &std::io::Error| FileProblem::Unreadable {
            path: shown.clone(),
            message: words(e),
        };
        // Every directory on the way must be a real directory of the bundle.
        let mut at = self.root.clone();
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            at.push(part);
            let metadata = match std::fs::symlink_metadata(&at) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(FileProblem::Missing(shown));
                }
                Err(e) => return Err(unreadable(&e)),
            };
            let file_type = metadata.file_type();
            if file_type.is_symlink() {
                return Err(FileProblem::Symlink(shown));
            }
            let last = parts.peek().is_none();
            if !last && !file_type.is_dir() {
                return Err(FileProblem::Missing(shown));
            }
            if last && !file_type.is_file() {
                return Err(FileProblem::NotRegular {
                    path: shown,
                    kind: kind_of(file_type),
                });
            }
        }
        // The checks above and the open are not one step: O_NOFOLLOW and O_NONBLOCK keep a
        // file swapped in between from leading outside or blocking, and fstat decides.
        let fd = rustix::fs::open(
            &at,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| unreadable(&e.into()))?;
        let file = File::from(fd);
        let file_type = file.metadata().map_err(|e| unreadable(&e))?.file_type();
        if !file_type.is_file() {
            return Err(FileProblem::NotRegular {
                path: shown,
                kind: kind_of(file_type),
            });
        }
        Ok(file)
    }

    /// The whole file, if it holds at most `cap` bytes.
    pub fn read(&self, path: &str, cap: u64) -> Result<Vec<u8>, FileProblem> {
        let file = self.open(path)?;
        let announced = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut bytes = Vec::with_capacity(announced.min(cap + 1) as usize);
        file.take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| FileProblem::Unreadable {
                path: printable(path),
                message: words(&e),
            })?;
        if bytes.len() as u64 > cap {
            return Err(FileProblem::TooLarge {
                path: printable(path),
                cap,
            });
        }
        Ok(bytes)
    }

    /// SHA-256 (hex) and size of a file, streamed, reading at most `expected_size + 1` bytes:
    /// a file longer than expected is known to be wrong without reading the rest.
    pub fn digest(&self, path: &str, expected_size: u64) -> Result<(String, u64), FileProblem> {
        let mut file = self.open(path)?.take(expected_size.saturating_add(1));
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = file
                .read(&mut buffer)
                .map_err(|e| FileProblem::Unreadable {
                    path: printable(path),
                    message: words(&e),
                })?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            size += n as u64;
        }
        Ok((hex(&hasher.finalize()), size))
    }

    /// Every entry under the directory that is not a directory (regular files, links and
    /// special files alike, so that each is accounted for), as bundle paths. Symbolic links
    /// to directories are not entered. At most `cap` entries.
    pub fn list(&self, cap: usize) -> Result<BTreeSet<String>, String> {
        let mut found = BTreeSet::new();
        let mut pending = vec![self.root.clone()];
        while let Some(current) = pending.pop() {
            let entries = std::fs::read_dir(&current).map_err(|e| {
                format!(
                    "{} cannot be listed: {}",
                    printable(&current.display().to_string()),
                    words(&e)
                )
            })?;
            for entry in entries {
                let entry =
                    entry.map_err(|e| format!("the bundle cannot be listed: {}", words(&e)))?;
                let path = entry.path();
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if is_dir {
                    pending.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&self.root).unwrap_or(&path);
                let parts: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                found.insert(parts.join("/"));
                if found.len() > cap {
                    return Err(format!("the bundle holds more than {cap} files"));
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_inside_the_bundle_are_read() {
        let dir = std::env::temp_dir().join(format!("untrusted-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("versions")).unwrap();
        std::fs::write(dir.join("versions/a.json"), b"{}").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("versions/link.json")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("outside")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join("zero")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("fifo"),
            rustix::fs::FileType::Fifo,
            Mode::RUSR | Mode::WUSR,
            0,
        )
        .unwrap();
        let bundle = BundleDir::new(&dir);
        assert_eq!(bundle.read("versions/a.json", 10).unwrap(), b"{}");
        assert!(matches!(
            bundle.read("versions/a.json", 1),
            Err(FileProblem::TooLarge { .. })
        ));
        assert!(matches!(
            bundle.open("versions/link.json"),
            Err(FileProblem::Symlink(_))
        ));
        assert!(matches!(
            bundle.open("outside/hostname"),
            Err(FileProblem::Symlink(_))
        ));
        assert!(matches!(bundle.open("zero"), Err(FileProblem::Symlink(_))));
        assert!(matches!(
            bundle.open("fifo"),
            Err(FileProblem::NotRegular { kind: "a FIFO", .. })
        ));
        assert!(matches!(
            bundle.open("versions"),
            Err(FileProblem::NotRegular { .. })
        ));
        assert!(matches!(
            bundle.open("nothing"),
            Err(FileProblem::Missing(_))
        ));
        let listed = bundle.list(100).unwrap();
        assert!(listed.contains("fifo") && listed.contains("outside") && listed.contains("zero"));
        assert!(!listed.iter().any(|p| p.starts_with("outside/")));
        assert!(bundle.list(2).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
