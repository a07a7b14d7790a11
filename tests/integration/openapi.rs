//! `docs/openapi.yaml` describes every route the node serves, and nothing else.

use std::collections::BTreeSet;

use stelselnode::server::{ADMIN_ROUTES, LOG_ROUTES, READ_ROUTES, legacy_paths};

/// (method, path) of every operation under `paths:`, read from the document's layout: paths
/// at two spaces of indentation, operations at four.
fn described() -> BTreeSet<(String, String)> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml")).unwrap();
    let mut operations = BTreeSet::new();
    let mut in_paths = false;
    let mut path = None;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
            path = Some(format!("/{p}"));
        } else if let Some(method) = line
            .strip_prefix("    ")
            .and_then(|l| l.strip_suffix(':'))
            .filter(|m| ["get", "post", "put", "delete", "head", "patch"].contains(m))
        {
            operations.insert((
                method.to_owned(),
                path.clone().expect("an operation under a path"),
            ));
        }
    }
    operations
}

fn served() -> BTreeSet<(String, String)> {
    let method = |m: &str| match m {
        // GET and HEAD on the same resource: OpenAPI describes HEAD with GET.
        "read" => "get".to_owned(),
        other => other.to_owned(),
    };
    // A parameter that spans segments (`{tile:.*}`) is one OpenAPI parameter (`{tile}`).
    let path = |p: &str| p.replace(":.*}", "}");
    ADMIN_ROUTES
        .iter()
        .chain(READ_ROUTES)
        .chain(LOG_ROUTES)
        .map(|(m, p)| (method(m), path(p)))
        .chain(legacy_paths().map(|p| ("get".to_owned(), p)))
        .collect()
}

#[test]
fn every_route_is_described_and_every_description_is_a_route() {
    let described = described();
    let served = served();
    assert!(served.len() >= 20, "{served:?}");
    let undocumented: Vec<_> = served.difference(&described).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/openapi.yaml: {undocumented:?}"
    );
    let stale: Vec<_> = described.difference(&served).collect();
    assert!(
        stale.is_empty(),
        "docs/openapi.yaml describes routes that do not exist: {stale:?}"
    );
}
