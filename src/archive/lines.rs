//! The `.jsonl.gz` files of a bundle: one JSON object per line, gzip. Written from rows the
//! database gave; read back, as untrusted input, one bounded line at a time, so a file of any
//! size (or a gzip bomb) costs the memory of one line.

use std::io::{BufRead, BufReader, Read, Write};
use std::marker::PhantomData;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The longest line read: an entry of the largest list is a few kilobytes.
const MAX_LINE: u64 = 4 * 1024 * 1024;

/// `items` as gzip JSON lines (no timestamp in the gzip header: the same rows give the same
/// bytes).
pub(super) fn gzip_lines<T: Serialize>(items: &[T]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    for item in items {
        serde_json::to_writer(&mut encoder, item).expect("a row serialises");
        encoder.write_all(b"\n").expect("writing to memory");
    }
    encoder.finish().expect("writing to memory")
}

/// Reads `T`s from gzip JSON lines; the first bad line ends the reading with its number.
pub(super) struct JsonLines<R: Read, T> {
    reader: BufReader<GzDecoder<R>>,
    path: String,
    number: usize,
    line: Vec<u8>,
    failed: bool,
    rows: PhantomData<fn() -> T>,
}

impl<R: Read, T> JsonLines<R, T> {
    pub(super) fn new(file: R, path: &str) -> Self {
        Self {
            reader: BufReader::new(GzDecoder::new(file)),
            path: path.to_owned(),
            number: 0,
            line: Vec::new(),
            failed: false,
            rows: PhantomData,
        }
    }

    fn fail(&mut self, why: &str) -> Option<Result<T, String>> {
        self.failed = true;
        Some(Err(format!("{} line {}: {why}", self.path, self.number)))
    }
}

impl<R: Read, T: DeserializeOwned> Iterator for JsonLines<R, T> {
    type Item = Result<T, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        self.line.clear();
        self.number += 1;
        let read = (&mut self.reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut self.line);
        match read {
            Err(_) => return self.fail("not a gzip stream"),
            Ok(0) => return None,
            Ok(_) => {}
        }
        if self.line.pop() != Some(b'\n') {
            return self.fail("too long, or the file does not end with a line break");
        }
        match serde_json::from_slice(&self.line) {
            Ok(row) => Some(Ok(row)),
            Err(_) => self.fail("not a record of this file"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_back_and_a_bad_line_is_named() {
        let bytes = gzip_lines(&[1, 2, 3]);
        let read: Result<Vec<i64>, String> = JsonLines::new(bytes.as_slice(), "x").collect();
        assert_eq!(read.unwrap(), [1, 2, 3]);

        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(b"1\n\"two\"\n3\n").unwrap();
        let bytes = encoder.finish().unwrap();
        let read: Vec<Result<i64, String>> = JsonLines::new(bytes.as_slice(), "x").collect();
        assert_eq!(
            read,
            [Ok(1), Err("x line 2: not a record of this file".into())]
        );

        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder
            .write_all(&vec![b'1'; MAX_LINE as usize + 10])
            .unwrap();
        let bytes = encoder.finish().unwrap();
        let read: Vec<Result<i64, String>> = JsonLines::new(bytes.as_slice(), "x").collect();
        assert_eq!(read.len(), 1);
        assert!(read[0].as_ref().unwrap_err().contains("too long"));
    }
}
