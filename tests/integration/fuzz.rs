//! Mutational fuzzing on the stable toolchain (issue 11, point 7): the strict XML list parser
//! (import) and the mutation JSON parser get inputs made by mutating a corpus — the official
//! example lists and the files in `tests/fuzz/` — for a bounded time each run
//! (`FUZZ_SECONDS`, default 15 per target). cargo-fuzz and libFuzzer need a
//! nightly compiler, which cannot be had here; this fuzzer has no coverage feedback, so its
//! corpus carries the tricky shapes (DTDs, entities, CDATA, prefixes, ports, offsets) and the
//! mutations recombine them.
//!
//! Properties: nothing panics; a list that parses renders to bytes that pass the facet check
//! and parse back to the same entries; a submission that parses has an entry that survives
//! its own storage form. An input that breaks one is written to `target/fuzz-failures/`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stelselnode::domain::ListKind;
use stelselnode::mutations::parse_submission;
use stelselnode::xml::{check_rendered, parse_list, render_list};

use super::support::official_example;
use super::support::random::Random;

fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    Duration::from_secs(seconds)
}

fn corpus(folder: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect()
}

/// Fragments that matter to the parsers, inserted whole.
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"&lt;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<?xml version=\"1.0\"?>",
    b"<!DOCTYPE x [<!ENTITY e \"ee\">]>",
    b"&e;",
    b"xmlns=\"\"",
    b"xmlns:a=\"x\"",
    b"a:",
    b"\"",
    b"'",
    b"\\u0000",
    b"\\ud800",
    b"\0",
    b"\xc3\xa9",
    b"\xe2\x80\xae",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\t",
    b"\r\n",
    b" ",
    b"@medmij",
    b"https://",
    b":65536",
    b"..",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"-1",
    b"1e999",
    b"99999999999999999999",
    b"\"zal\"",
    b"\"delete\"",
    b"\"upsert\"",
];

/// One mutation of `input`, perhaps spliced with `other`.
fn mutate(random: &mut Random, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=random.below(4) {
        let at = random.below(out.len() + 1);
        match random.below(6) {
            0 if !out.is_empty() => {
                let i = random.below(out.len());
                out[i] ^= 1 << random.below(8);
            }
            1 => {
                let token = TOKENS[random.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            2 if at < out.len() => {
                let end = (at + 1 + random.below(32)).min(out.len());
                out.drain(at..end);
            }
            3 if at < out.len() => {
                let end = (at + 1 + random.below(64)).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            4 if !other.is_empty() => {
                let from = random.below(other.len());
                let end = (from + 1 + random.below(128)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ => out.insert(at.min(out.len()), random.next() as u8),
        }
    }
    out
}

/// Runs `property` on mutated inputs until the budget is spent; returns the number of runs.
fn fuzz(name: &str, seeds: &[Vec<u8>], property: impl Fn(&[u8]) -> Result<(), String>) -> u64 {
    let started = Instant::now();
    let seed = 0x5eed_f022 ^ name.len() as u64;
    let mut random = Random(seed);
    let mut runs = 0u64;
    let mut pool: Vec<Vec<u8>> = seeds.to_vec();
    while started.elapsed() < budget() {
        let base = &pool[random.below(pool.len())];
        let other = &pool[random.below(pool.len())];
        let input = mutate(&mut random, base, other);
        let outcome = catch_unwind(AssertUnwindSafe(|| property(&input)))
            .unwrap_or_else(|_| Err("panicked".into()));
        if let Err(failure) = outcome {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{name}-{runs}"));
            std::fs::write(&file, &input).unwrap();
            panic!(
                "{name}, seed {seed:#x}, run {runs}: {failure}; input in {}",
                file.display()
            );
        }
        // Keep some mutants as parents, so that mutations accumulate.
        if runs.is_multiple_of(16) && pool.len() < 512 {
            pool.push(input);
        }
        runs += 1;
    }
    eprintln!("fuzz {name}: {runs} inputs in {:?}", started.elapsed());
    runs
}

#[test]
fn the_list_parser_survives_mutated_lists() {
    let mut seeds = corpus("xml");
    seeds.extend(ListKind::ALL.map(|list| std::fs::read(official_example(list)).unwrap()));
    let runs = fuzz("xml", &seeds, |input| {
        for list in ListKind::ALL {
            if let Ok(parsed) = parse_list(input, list) {
                let rendered = render_list(&parsed);
                check_rendered(&rendered, list).map_err(|v| format!("{list}: {v}"))?;
                let again = parse_list(&rendered, list).map_err(|v| format!("{list}: {v}"))?;
                if again.entries != parsed.entries {
                    return Err(format!("{list}: the entries changed in a round trip"));
                }
            }
        }
        Ok(())
    });
    assert!(runs > 1000, "only {runs} inputs");
}

#[test]
fn the_submission_parser_survives_mutated_json() {
    let runs = fuzz("json", &corpus("json"), |input| {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(input) else {
            return Ok(());
        };
        if let Ok(submission) = parse_submission(&value)
            && let Some(entry) = submission.change.entry()
        {
            let stored: serde_json::Value = serde_json::from_str(&entry.to_json()).unwrap();
            let wrapped = serde_json::json!({
                "list": entry.list(), "operation": "upsert", "base_version": 0,
                "on_behalf_of": "Fuzz", "reference": "FUZZ-1", "entry": stored,
            });
            let again = parse_submission(&wrapped).map_err(|v| v.to_string())?;
            if again.change.entry() != Some(entry) {
                return Err("the entry changed through its storage form".into());
            }
        }
        Ok(())
    });
    assert!(runs > 1000, "only {runs} inputs");
}
