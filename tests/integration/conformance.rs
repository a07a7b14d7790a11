//! Every list the node renders validates against the official XSDs, checked by an
//! independent validator (xmllint); the official examples survive import and export.

use chrono::Utc;
use stelselnode::domain::ListKind;
use stelselnode::sample::{SampleSize, network};
use stelselnode::xml::{parse_list, render_list};

use super::support::{conformance_dir, official_example, xmllint_validate};

#[test]
fn schemas_are_the_official_ones() {
    for list in ListKind::ALL {
        let ours = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("schemas")
                .join(list.schema_file()),
        )
        .unwrap();
        let official =
            std::fs::read(conformance_dir().join("xsd").join(list.schema_file())).unwrap();
        assert!(
            ours == official,
            "schemas/{} differs from the official XSD",
            list.schema_file()
        );
    }
}

#[test]
fn the_verifier_itself_refuses_an_invalid_list() {
    // Guards against a verifier that accepts anything (wrong schema path, wrong flags).
    let bad = std::fs::read_to_string(official_example(ListKind::Zal))
        .unwrap()
        .replacen("umcharderwijk@medmij", "UMC@medmij", 1);
    assert!(xmllint_validate(bad.as_bytes(), ListKind::Zal).is_err());
}

#[test]
fn official_examples_re_render_to_valid_lists_with_the_same_entries() {
    for list in ListKind::ALL {
        let original = std::fs::read(official_example(list)).unwrap();
        let parsed = parse_list(&original, list).unwrap();
        let rendered = render_list(&parsed);
        xmllint_validate(&rendered, list).unwrap_or_else(|e| panic!("{list}: {e}"));
        assert_eq!(parse_list(&rendered, list).unwrap(), parsed, "{list}");
    }
}

#[test]
fn sample_networks_of_every_shape_validate() {
    for size in [
        SampleSize::realistic(300),
        SampleSize {
            zorgaanbieders: 3,
            gegevensdiensten: 7,
            systeemrollen: 3,
            xis_nodes: 1,
            pgo_nodes: 1,
        },
    ] {
        let net = network(size, Utc::now());
        for lijst in [&net.zal, &net.ocl, &net.gnl, &net.whitelist] {
            xmllint_validate(&render_list(lijst), lijst.kind())
                .unwrap_or_else(|e| panic!("{}: {e}", lijst.kind()));
        }
    }
}

#[test]
fn an_empty_list_validates() {
    let original =
        std::fs::read(conformance_dir().join("examples/afsprakenset-1.1/zal_example_empty.xml"))
            .unwrap();
    let parsed = parse_list(&original, ListKind::Zal).unwrap();
    assert!(parsed.entries.is_empty());
    xmllint_validate(&render_list(&parsed), ListKind::Zal).unwrap();
}
