//! Archive bundles from elsewhere (issue 21): what an auditor runs `stelselnode archive
//! verify` on may have been edited by anyone, without the key. Every edit is refused with
//! exit status 4 (never a panic, a signal or a hang), within bounded memory, without opening
//! anything outside the bundle; the signer is pinned; and the exporter never removes what it
//! did not make. On both backends, since the bundles are exported from a database.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use stelselnode::archive::{BundleTrust, ExportRequest, MANIFEST, MANIFEST_SIGNATURE, bundles};
use stelselnode::devpki::{KeyAlgorithm, Purpose};
use stelselnode::domain::ListKind;
use stelselnode::import::{import_document, render_working_state};
use stelselnode::signing::{SignerIdentity, SigningKey};

use super::archive::{Archive, archive, copy_dir, export_parts, resign, walk};
use super::support::TestDatabase;
use super::support::node::node;

on_both_backends!(
    edited_bundles_are_refused_without_crash_hang_or_memory,
    the_signer_must_be_a_signing_certificate_and_can_be_pinned,
    an_import_never_makes_a_volgnummer_gap,
    export_writes_only_what_it_made,
);

/// What one run of `archive verify` did.
struct Run {
    code: Option<i32>,
    stdout: String,
    /// Peak resident memory in KiB (GNU time).
    peak_kib: u64,
    took: Duration,
}

/// `stelselnode archive verify DIR --ca CA [args]`, killed after 60 s (exit status 124), its
/// peak memory measured by GNU time.
fn verify_cli(dir: &Path, ca: &Path, args: &[&str]) -> Run {
    let report = tempfile::NamedTempFile::new().unwrap();
    let started = Instant::now();
    let output = Command::new("timeout")
        .args(["-s", "KILL", "60", "/usr/bin/time", "-f", "%M", "-o"])
        .arg(report.path())
        .arg(env!("CARGO_BIN_EXE_stelselnode"))
        .args(["archive", "verify"])
        .arg(dir)
        .arg("--ca")
        .arg(ca)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("timeout and GNU time are installed (scripts/test)");
    let peak_kib = std::fs::read_to_string(report.path())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or(u64::MAX);
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        peak_kib,
        took: started.elapsed(),
    }
}

fn fifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

fn symlink(target: &str, path: &Path) {
    let _ = std::fs::remove_file(path);
    std::os::unix::fs::symlink(target, path).unwrap();
}

/// A record's JSON with one field changed.
fn edit_record(path: &Path, field: &str, value: serde_json::Value) {
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    record[field] = value;
    std::fs::write(path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
}

struct Bundles {
    a: Archive,
    genuine: PathBuf,
    ca: PathBuf,
}

impl Bundles {
    async fn new(db: TestDatabase) -> Self {
        let a = archive(db).await;
        let genuine = a.export("genuine", a.end, None).await;
        let ca = a.dir.path().join("ca.pem");
        std::fs::write(&ca, a.node.signer.ca.certificate_pem()).unwrap();
        Self { a, genuine, ca }
    }

    /// A fresh copy of the genuine bundle.
    fn copy(&self, name: &str) -> PathBuf {
        let dir = self.a.dir.path().join(name);
        copy_dir(&self.genuine, &dir);
        dir
    }

    fn first_record(&self, dir: &Path) -> PathBuf {
        walk(&dir.join("versions/whitelist"))
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .unwrap()
    }

    fn signature_file(&self, dir: &Path) -> PathBuf {
        walk(&dir.join("versions/whitelist"))
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "sig"))
            .unwrap()
    }

    fn body(&self, dir: &Path) -> PathBuf {
        walk(&dir.join("bodies")).remove(0)
    }

    /// Refused with status 4 and `expected` among the problems, quickly and within 64 MiB
    /// of what verifying the genuine bundle took.
    fn assert_refused(&self, dir: &Path, expected: &str, baseline_kib: u64) {
        let run = verify_cli(dir, &self.ca, &[]);
        assert_eq!(run.code, Some(4), "{}: {}", dir.display(), run.stdout);
        assert!(
            run.stdout.contains(expected),
            "{}: expected {expected:?} in {}",
            dir.display(),
            run.stdout
        );
        assert!(
            run.peak_kib <= baseline_kib + 64 * 1024,
            "{}: peak {} KiB, the genuine bundle took {baseline_kib} KiB",
            dir.display(),
            run.peak_kib
        );
        assert!(run.took < Duration::from_secs(30), "{}", dir.display());
    }
}

async fn edited_bundles_are_refused_without_crash_hang_or_memory(db: TestDatabase) {
    let b = Bundles::new(db).await;
    let genuine = verify_cli(&b.genuine, &b.ca, &[]);
    assert_eq!(genuine.code, Some(0), "{}", genuine.stdout);
    let baseline = genuine.peak_kib;

    // Finding 1: an absurd Volgnummer in a record made the gap message collect billions of
    // numbers (exit 101 "capacity overflow", or an abort allocating 4.8 GB).
    for volgnummer in [i64::MAX, 200_000_000] {
        let dir = b.copy(&format!("volgnummer-{volgnummer}"));
        edit_record(&b.first_record(&dir), "volgnummer", volgnummer.into());
        b.assert_refused(
            &dir,
            "does not match its SHA-256 and size in the MANIFEST",
            baseline,
        );
        // The same edit re-signed with the right key (an exporter bug, an insider): the
        // record is not where its Volgnummer puts it.
        resign_manifest_for_edits(&dir, &b.a.node.signer.key);
        b.assert_refused(&dir, "holds the record of whitelist version", baseline);
    }

    // Finding 2: a gzip bomb whose record claims an enormous size (that record fails its
    // digest, so nothing it says is used).
    let bomb = b.copy("bomb");
    let body = b.body(&bomb);
    let made = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 512M /dev/zero | gzip -1 > '{}'",
            body.display()
        ))
        .status()
        .unwrap();
    assert!(made.success());
    for record in walk(&bomb.join("versions")) {
        if record.extension().is_some_and(|e| e == "json") {
            edit_record(&record, "size_bytes", i64::MAX.into());
        }
    }
    b.assert_refused(
        &bomb,
        "does not match its SHA-256 and size in the MANIFEST",
        baseline,
    );

    // Finding 3: a MANIFEST that is /dev/zero (its length says 0).
    let zero = b.copy("manifest-dev-zero");
    symlink("/dev/zero", &zero.join(MANIFEST));
    b.assert_refused(&zero, "MANIFEST is a symbolic link", baseline);

    // Finding 4: FIFOs block a reader forever; links lead outside the bundle.
    let fifo_manifest = b.copy("fifo-manifest");
    fifo(&fifo_manifest.join(MANIFEST));
    b.assert_refused(&fifo_manifest, "MANIFEST is a FIFO", baseline);
    let fifo_signature = b.copy("fifo-signature");
    fifo(&fifo_signature.join(MANIFEST_SIGNATURE));
    b.assert_refused(&fifo_signature, "MANIFEST.sig is a FIFO", baseline);
    let fifo_listed = b.copy("fifo-listed");
    fifo(&b.signature_file(&fifo_listed));
    b.assert_refused(&fifo_listed, "is a FIFO, not a regular file", baseline);
    let zero_body = b.copy("body-dev-zero");
    symlink("/dev/zero", &b.body(&zero_body));
    b.assert_refused(&zero_body, "is a symbolic link", baseline);
    let shadow = b.copy("record-etc-shadow");
    symlink("/etc/shadow", &b.first_record(&shadow));
    b.assert_refused(&shadow, "is a symbolic link", baseline);
    // The genuine versions, but in a directory outside the bundle.
    let outside = b.copy("versions-outside");
    let elsewhere = b.a.dir.path().join("elsewhere");
    std::fs::rename(outside.join("versions"), &elsewhere).unwrap();
    symlink(elsewhere.to_str().unwrap(), &outside.join("versions"));
    b.assert_refused(&outside, "is a symbolic link", baseline);

    // No usable trust anchor is an error of the command (1), not a refused bundle.
    for (name, content) in [
        ("empty.pem", ""),
        (
            "junk.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ),
    ] {
        let ca = b.a.dir.path().join(name);
        std::fs::write(&ca, content).unwrap();
        let run = verify_cli(&b.genuine, &ca, &[]);
        assert_eq!(run.code, Some(1), "{name}: {}", run.stdout);
    }
}

/// Rewrites the MANIFEST's digests and sizes for the files as they now are, and signs it
/// with `key`: what a forger with the key, or an exporter bug, would make.
fn resign_manifest_for_edits(dir: &Path, key: &SigningKey) {
    let manifest = std::fs::read_to_string(dir.join(MANIFEST)).unwrap();
    let rewritten: String = manifest
        .lines()
        .map(|line| match line.strip_prefix("file ") {
            Some(rest) => {
                let path = rest.splitn(3, ' ').nth(2).unwrap();
                let bytes = std::fs::read(dir.join(path)).unwrap();
                format!(
                    "file {} {} {path}\n",
                    stelselnode::signing::sha256_hex(&bytes),
                    bytes.len()
                )
            }
            None => format!("{line}\n"),
        })
        .collect();
    std::fs::write(dir.join(MANIFEST), &rewritten).unwrap();
    resign(dir, key);
}

async fn the_signer_must_be_a_signing_certificate_and_can_be_pinned(db: TestDatabase) {
    let b = Bundles::new(db).await;
    let ca = &b.a.node.signer.ca;
    let key_for = |purpose: Purpose| {
        let issued = ca.issue(&purpose, KeyAlgorithm::EcdsaP256).unwrap();
        SigningKey::from_der(
            issued.key_der.secret_pkcs8_der(),
            vec![issued.certificate.clone()],
        )
        .unwrap()
    };
    // A certificate under the same CA with no extended key usage: not a signing certificate.
    let unrestricted = b.copy("unrestricted");
    resign(
        &unrestricted,
        &key_for(Purpose::Unrestricted {
            common_name: "some other organisation".into(),
        }),
    );
    let refused = verify_cli(&unrestricted, &b.ca, &[]);
    assert_eq!(refused.code, Some(4), "{}", refused.stdout);
    assert!(
        refused
            .stdout
            .contains("lacks the codeSigning extended key usage"),
        "{}",
        refused.stdout
    );

    // Another organisation's signing certificate under the same CA: a signing certificate,
    // so only a pinned signer tells it apart.
    let other = b.copy("other-signer");
    resign(
        &other,
        &key_for(Purpose::Signing {
            common_name: "some other organisation".into(),
        }),
    );
    assert_eq!(verify_cli(&other, &b.ca, &[]).code, Some(0));
    let identity = SignerIdentity::of(&b.a.node.signer.certificate).unwrap();
    let by_name = format!("cn:{}", identity.common_name.clone().unwrap());
    let by_key = format!("spki-sha256:{}", identity.spki_sha256);
    for pin in [&by_name, &by_key] {
        let refused = verify_cli(&other, &b.ca, &["--signer", pin]);
        assert_eq!(refused.code, Some(4), "{pin}: {}", refused.stdout);
        assert!(
            refused.stdout.contains("is not the expected signer"),
            "{}",
            refused.stdout
        );
        let accepted = verify_cli(&b.genuine, &b.ca, &["--signer", pin]);
        assert_eq!(accepted.code, Some(0), "{pin}: {}", accepted.stdout);
        // The answer names the signer in the forms --signer takes.
        assert!(accepted.stdout.contains(&by_key), "{}", accepted.stdout);
    }
    let malformed = verify_cli(&b.genuine, &b.ca, &["--signer", "stelselnode"]);
    assert_eq!(
        malformed.code,
        Some(2),
        "a usage error: {}",
        malformed.stdout
    );
}

/// Finding 5: `export` carries the next Volgnummer; importing it (after an edit) and
/// publishing used to publish the one after, so the archive had a gap.
async fn an_import_never_makes_a_volgnummer_gap(db: TestDatabase) {
    let node = node(db, KeyAlgorithm::EcdsaP256).await;
    // Signed now: the test CA's certificates are valid from now on.
    node.clock.set(Utc::now());
    let storage = node.db.storage.clone();
    node.publish_all().await;
    let published = storage
        .current_version(ListKind::Gnl)
        .await
        .unwrap()
        .unwrap();
    let exported = render_working_state(storage.as_ref(), ListKind::Gnl, Utc::now())
        .await
        .unwrap();
    let next = published.volgnummer.next();
    let mut document = String::from_utf8(exported).unwrap();
    assert!(document.contains(&format!("<Volgnummer>{next}</Volgnummer>")));
    let name_start = document.find("<Weergavenaam>").unwrap() + "<Weergavenaam>".len();
    document.insert_str(name_start, "Nieuwe ");
    import_document(
        storage.as_ref(),
        ListKind::Gnl,
        document.as_bytes(),
        "cli:test",
        Utc::now(),
    )
    .await
    .unwrap();
    node.publish(ListKind::Gnl).await;
    let after = storage
        .current_version(ListKind::Gnl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.volgnummer, next, "one more than the last published");

    // An older or newer Volgnummer in an imported document does not move the numbering either.
    for claimed in ["1", "999999"] {
        let changed = document.replace(
            &format!("<Volgnummer>{next}</Volgnummer>"),
            &format!("<Volgnummer>{claimed}</Volgnummer>"),
        );
        import_document(
            storage.as_ref(),
            ListKind::Gnl,
            changed.as_bytes(),
            "cli:test",
            Utc::now(),
        )
        .await
        .unwrap();
        let head = storage.list_head(ListKind::Gnl).await.unwrap();
        assert_eq!(head.next_volgnummer(), next.next(), "claimed {claimed}");
    }

    // The archive of it verifies, and the archive check sees no jump.
    let dir = tempfile::tempdir().unwrap();
    let request = ExportRequest {
        out: dir.path().join("bundle"),
        from: None,
        to: Utc::now() + chrono::Duration::hours(1),
        previous: None,
    };
    let services = node.services_with_archive_ca();
    services
        .exports
        .export(&request, &mut |_, _| {})
        .await
        .unwrap();
    let trust = BundleTrust::new(vec![node.signer.ca.certificate().clone()]);
    stelselnode::archive::verify_bundle(&request.out, &trust, None, Utc::now())
        .unwrap_or_else(|problems| panic!("{problems:?}"));
    let check = &services.archive_check;
    let report = check.run().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Finding 7 and the export's low items: nothing the command did not make is removed or
/// overwritten, and an unusable target is refused before anything is written.
async fn export_writes_only_what_it_made(db: TestDatabase) {
    use super::support::server::TestServer;
    use stelselnode::tls::NodeAccess;

    let server = TestServer::start(db, NodeAccess::Whitelist).await;
    server.publish_all().await;
    let parts = export_parts(&server);
    let exports = &parts.services.exports;
    let dir = tempfile::tempdir().unwrap();
    let to = Utc::now() + chrono::Duration::hours(1);
    let export = |out: PathBuf, previous: Option<PathBuf>| {
        let request = ExportRequest {
            out,
            from: None,
            to,
            previous,
        };
        async move { exports.export(&request, &mut |_, _| {}).await }
    };
    let leftovers = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".partial") && n.starts_with('.'))
            .count()
    };

    // An unrelated directory that the old exporter deleted (out.with_extension("partial")).
    let unrelated = dir.path().join("backup.partial");
    std::fs::create_dir(&unrelated).unwrap();
    std::fs::write(unrelated.join("keep.txt"), b"mine").unwrap();
    export(dir.path().join("backup.2026"), None).await.unwrap();
    assert_eq!(std::fs::read(unrelated.join("keep.txt")).unwrap(), b"mine");
    // A target named like a partial directory is just a name.
    export(dir.path().join("b.partial"), None).await.unwrap();
    assert!(dir.path().join("b.partial").join(MANIFEST).is_file());

    // A target that is not empty, a file, or a link: refused before writing anything.
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("x"), b"x").unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&empty, &link).unwrap();
    for target in [&full, &link, &dir.path().join("full/x/below")] {
        let refused = export(target.clone(), None).await.unwrap_err().to_string();
        assert_eq!(leftovers(), 0, "{target:?}: {refused}");
        // An io error is said once ("Not a directory: Not a directory" before).
        let words: Vec<&str> = refused.split(": ").collect();
        assert!(
            words.windows(2).all(|w| w[0] != w[1]),
            "{target:?}: {refused}"
        );
    }
    assert!(std::fs::read_dir(&empty).unwrap().next().is_none());
    // An empty directory is filled.
    export(empty.clone(), None).await.unwrap();
    assert!(empty.join(MANIFEST).is_file());

    // --previous must be a bundle whose signature holds.
    let forged = dir.path().join("forged");
    copy_dir(&dir.path().join("backup.2026"), &forged);
    let text = std::fs::read_to_string(forged.join(MANIFEST)).unwrap();
    std::fs::write(
        forged.join(MANIFEST),
        text.replace("covers-from", "covers-from "),
    )
    .unwrap();
    let refused = export(dir.path().join("next"), Some(forged))
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("the MANIFEST signature does not verify"),
        "{refused}"
    );
    assert_eq!(leftovers(), 0);

    // Nightly: keep 0 is refused; a stray bundle named for a far-off day does not stop the
    // exports ("up to date") — its signature is checked first.
    let nightly = dir.path().join("nightly");
    let keep_none = exports.nightly(&nightly, 0).await;
    assert!(keep_none.is_err());
    std::fs::create_dir_all(nightly.join("2099-01-01")).unwrap();
    std::fs::write(
        nightly.join("2099-01-01").join(MANIFEST),
        "stelselnode-archive-bundle 1\ncovers-from beginning\ncovers-up-to 2099-01-01T00:00:00Z\n",
    )
    .unwrap();
    let stray = exports.nightly(&nightly, 2).await;
    assert!(stray.is_err(), "{stray:?}");
    assert_eq!(bundles(&nightly).unwrap().len(), 1);
}
