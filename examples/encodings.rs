//! Sizes and times of a document in each content coding (issue 25): the levels the node
//! serves (`src/server/encoding.rs`), and for comparison the other levels that were measured
//! when they were chosen.
//!
//! `cargo run --release --example encodings -- FILE`; one tab-separated line per coding and
//! level: name, bytes, seconds.

use std::io::Write;
use std::time::Instant;

use stelselnode::server::Encoding;

fn main() {
    let file = std::env::args().nth(1).expect("usage: encodings FILE");
    let bytes = std::fs::read(&file).expect("a readable file");
    let report = |name: &str, encode: &dyn Fn() -> Vec<u8>| {
        let started = Instant::now();
        let size = encode().len();
        println!("{name}\t{size}\t{:.2}", started.elapsed().as_secs_f64());
    };
    println!("identity\t{}\t0", bytes.len());
    for encoding in Encoding::LATER {
        report(&format!("node {}", encoding.token()), &|| {
            encoding.encode(&bytes)
        });
    }
    for level in [1, 6] {
        report(&format!("gzip {level}"), &|| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            e.write_all(&bytes).expect("to memory");
            e.finish().expect("to memory")
        });
    }
    for (quality, window) in [(5, 22), (8, 22), (9, 24), (11, 24)] {
        report(&format!("br q{quality} w{window}"), &|| {
            let params = brotli::enc::BrotliEncoderParams {
                quality,
                lgwin: window,
                ..Default::default()
            };
            let mut out = Vec::new();
            brotli::BrotliCompress(&mut bytes.as_slice(), &mut out, &params).expect("to memory");
            out
        });
    }
    for level in [3, 9, 15, 19] {
        report(&format!("zstd {level}"), &|| {
            zstd::bulk::compress(&bytes, level).expect("to memory")
        });
    }
}
