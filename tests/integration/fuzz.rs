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
//!
//! The archive verifier (issue 21) gets genuine bundles with one to three edits — bytes of
//! any file, MANIFEST lines, record fields set to extremes, files turned into FIFOs, links,
//! directories, removed or added — and must refuse every one without panicking; every 16th
//! also runs as the command under an address-space limit, which must exit 4, never 0, 101
//! or by a signal.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use stelselnode::domain::ListKind;
use stelselnode::mutations::parse_submission;
use stelselnode::xml::{
    Rendered, check_rendered, check_rendered_entries, parse_list, render_list, render_version,
};

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
                // The check that reads only new entries agrees, with and without a memo.
                let Rendered { document, entries } =
                    render_version(parsed.tijdstempel, parsed.volgnummer, &parsed.entries, 0);
                let document = bytes::Bytes::from(document);
                let first = check_rendered_entries(document.clone(), list, &entries, None)
                    .map_err(|v| format!("{list}: {v}"))?;
                check_rendered_entries(document, list, &entries, Some(&first.checked))
                    .map_err(|v| format!("{list}: {v}"))?;
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

/// Address space the `archive verify` command may use on a small bundle: its runtime and
/// libraries plus the 64 MiB the issue allows beyond the largest version (the genuine bundle
/// is verified under it first, so the limit is known to be enough); a body inflated without a
/// cap needs far more.
const VERIFY_ADDRESS_SPACE: u64 = 384 * 1024 * 1024;

/// One edit of the bundle in `dir`; whether it changed anything.
fn edit_bundle(random: &mut Random, dir: &Path, files: &[(String, Vec<u8>)]) -> bool {
    use std::os::unix::fs::symlink;
    let (path, original) = &files[random.below(files.len())];
    let target = dir.join(path);
    let other = &files[random.below(files.len())].1;
    // An earlier edit may have made a file a FIFO or a link: the harness reads regular files
    // only, or it would block where the verifier must not.
    let regular = |path: &Path| {
        std::fs::symlink_metadata(path)
            .ok()
            .filter(|m| m.file_type().is_file())
            .and_then(|_| std::fs::read(path).ok())
    };
    let replace = |target: &Path| {
        let _ = std::fs::remove_file(target);
        let _ = std::fs::remove_dir_all(target);
    };
    match random.below(12) {
        0..=4 => {
            let Some(current) = regular(&target) else {
                return false;
            };
            let mutated = mutate(random, &current, other);
            std::fs::write(&target, &mutated).unwrap();
            mutated != *original
        }
        5 => {
            // One MANIFEST line rewritten.
            let Some(text) = regular(&dir.join("MANIFEST")).and_then(|b| String::from_utf8(b).ok())
            else {
                return false;
            };
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            let i = random.below(lines.len());
            let line = mutate(random, lines[i].as_bytes(), b"file 0 99999999999 ../");
            lines[i] = String::from_utf8_lossy(&line).into_owned();
            let rewritten = lines.join("\n") + "\n";
            std::fs::write(dir.join("MANIFEST"), &rewritten).unwrap();
            rewritten != text
        }
        6 => {
            // A record's number set to an extreme.
            let Some((record, _)) = files
                .iter()
                .filter(|(p, _)| p.ends_with(".json") && p.starts_with("versions/"))
                .nth(random.below(8))
            else {
                return false;
            };
            let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(
                &regular(&dir.join(record)).unwrap_or_default(),
            ) else {
                return false;
            };
            let field = ["volgnummer", "size_bytes", "grace_seconds"][random.below(3)];
            let extreme = [i64::MAX, i64::MIN, -1, 0, 200_000_000][random.below(5)];
            let changed = value[field] != serde_json::json!(extreme);
            value[field] = extreme.into();
            std::fs::write(dir.join(record), serde_json::to_vec(&value).unwrap()).unwrap();
            changed
        }
        7 => {
            replace(&target);
            Command::new("mkfifo")
                .arg(&target)
                .status()
                .unwrap()
                .success()
        }
        8 => {
            replace(&target);
            let to = ["/dev/zero", "/etc/hostname", "/etc", "/nonexistent"][random.below(4)];
            symlink(to, &target).is_ok()
        }
        9 => {
            replace(&target);
            std::fs::create_dir_all(&target).is_ok()
        }
        10 => {
            replace(&target);
            true
        }
        _ => std::fs::write(dir.join(format!("extra-{}", random.below(3))), other).is_ok(),
    }
}

/// Every file of a bundle, as bundle paths and bytes.
fn bundle_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    super::archive::walk(dir)
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn lay_out(dir: &Path, files: &[(String, Vec<u8>)]) {
    let _ = std::fs::remove_dir_all(dir);
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_verify_refuses_every_edited_bundle() {
    use stelselnode::archive::verify_bundle;

    let a = super::archive::archive(super::support::sqlite().await).await;
    let genuine = a.export("genuine", a.end, None).await;
    let ca = a.dir.path().join("ca.pem");
    std::fs::write(&ca, a.node.signer.ca.certificate_pem()).unwrap();
    let trust = a.trust();
    let files = bundle_files(&genuine);
    let scratch = a.dir.path().join("scratch");
    let command = |dir: &Path| {
        Command::new("prlimit")
            .arg(format!("--as={VERIFY_ADDRESS_SPACE}"))
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_stelselnode"))
            .args(["archive", "verify"])
            .arg(dir)
            .arg("--ca")
            .arg(&ca)
            .env("MALLOC_ARENA_MAX", "2")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("prlimit is installed (util-linux)")
    };
    // The limit leaves the genuine bundle room to verify.
    lay_out(&scratch, &files);
    let accepted = command(&scratch);
    assert_eq!(accepted.status.code(), Some(0), "{accepted:?}");

    let started = Instant::now();
    let mut random = Random(0x5eed_b0d1);
    let (mut runs, mut commands) = (0u64, 0u64);
    while started.elapsed() < budget() {
        lay_out(&scratch, &files);
        let mut changed = false;
        for _ in 0..=random.below(3) {
            changed |= edit_bundle(&mut random, &scratch, &files);
        }
        if !changed {
            continue;
        }
        let keep = |why: String| -> String {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/fuzz-failures")
                .join(format!("bundle-{runs}"));
            let _ = std::fs::remove_dir_all(&dir);
            let _ = Command::new("cp")
                .arg("-a")
                .arg(&scratch)
                .arg(&dir)
                .status();
            format!(
                "bundle run {runs}: {why}; the bundle is in {}",
                dir.display()
            )
        };
        match catch_unwind(AssertUnwindSafe(|| {
            verify_bundle(&scratch, &trust, None, a.end)
        })) {
            Err(_) => panic!("{}", keep("the verifier panicked".into())),
            Ok(Ok(_)) => panic!("{}", keep("an edited bundle was accepted".into())),
            Ok(Err(_)) => {}
        }
        if runs.is_multiple_of(16) {
            let output = command(&scratch);
            if output.status.code() != Some(4) {
                panic!(
                    "{}",
                    keep(format!(
                        "the command ended with {:?}: {}",
                        output.status,
                        String::from_utf8_lossy(&output.stderr)
                    ))
                );
            }
            commands += 1;
        }
        runs += 1;
    }
    eprintln!(
        "fuzz bundles: {runs} edited bundles ({commands} through the command) in {:?}",
        started.elapsed()
    );
    assert!(runs > 100, "only {runs} bundles");
}
