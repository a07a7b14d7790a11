//! The shape of `src/` (issue 22): no module imports one that imports it back (through
//! `crate::` or `super::` paths, file by file), and no file is longer than a screenful of
//! screenfuls — 500 lines — unless its module doc says why ("Longer than …").

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files longer than this state their reason at the top.
const MAX_LINES: usize = 500;

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b/mod.rs` and `src/a/b.rs` are module `a::b`; `src/lib.rs` is the crate root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its unit tests.
fn code_of(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths a file names with `crate::…` or `super::…`, resolved from `module`.
fn named_paths(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for (start, _) in code.match_indices("::") {
        // The first `::` of a path that starts with `crate` or `super`.
        let head_start = code[..start]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let head = &code[head_start..start];
        let preceded_by_path = head_start >= 2 && &bytes[head_start - 2..head_start] == b"::";
        if !matches!(head, "crate" | "super") || preceded_by_path {
            continue;
        }
        let path: Vec<&str> = code[head_start..]
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or_default()
            .split("::")
            .filter(|p| !p.is_empty())
            .collect();
        let mut resolved: Vec<String> = Vec::new();
        for (i, part) in path.iter().enumerate() {
            match *part {
                "crate" if i == 0 => resolved.clear(),
                "super" => {
                    if resolved.is_empty() && i == 0 {
                        resolved = module.to_vec();
                    }
                    resolved.pop();
                }
                name => resolved.push(name.to_owned()),
            }
        }
        found.push(resolved);
    }
    found
}

#[test]
fn src_has_no_import_cycle_and_no_unexplained_long_file() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let mut edges: BTreeMap<&Vec<String>, BTreeSet<&Vec<String>>> = BTreeMap::new();
    let mut long = Vec::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        if text.lines().count() > MAX_LINES
            && !text.lines().take(20).any(|l| l.contains("Longer than"))
        {
            long.push(file.display().to_string());
        }
        for path in named_paths(module, &code_of(&text)) {
            // The longest prefix that is a module file.
            let target = (1..=path.len())
                .rev()
                .find_map(|n| modules.get_key_value(&path[..n]).map(|(k, _)| k));
            if let Some(target) = target.filter(|t| *t != module) {
                edges.entry(module).or_default().insert(target);
            }
        }
    }
    assert!(
        long.is_empty(),
        "longer than {MAX_LINES} lines without a reason: {long:?}"
    );

    // A cycle is an edge a → b with a path b → … → a.
    let reaches = |from: &Vec<String>, to: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut next = vec![from];
        while let Some(m) = next.pop() {
            if m == to {
                return true;
            }
            if seen.insert(m) {
                next.extend(edges.get(m).into_iter().flatten().copied());
            }
        }
        false
    };
    let cycles: Vec<String> = edges
        .iter()
        .flat_map(|(a, targets)| targets.iter().map(move |b| (*a, *b)))
        .filter(|(a, b)| reaches(b, a))
        .map(|(a, b)| format!("{} → {}", a.join("::"), b.join("::")))
        .collect();
    assert!(cycles.is_empty(), "imports that come back: {cycles:#?}");
}

#[test]
fn the_check_resolves_crate_and_super_paths() {
    let module = vec!["server".to_owned(), "ui".to_owned(), "queue".to_owned()];
    let paths = named_paths(
        &module,
        "use super::layout::page;\nuse crate::server::admin::require;\nx::super::y;",
    );
    assert_eq!(
        paths,
        [
            vec!["server", "ui", "layout", "page"],
            vec!["server", "admin", "require"],
        ]
    );
}
