//! A real PKCS#11 token: SoftHSM2 (Debian `softhsm2`) with its own token directory and
//! configuration, a token initialised and an ECDSA P-256 key generated in it by the Debian
//! tools (`softhsm2-util`, `pkcs11-tool` from `opensc`), as an operator would. The node reads
//! the configuration from `SOFTHSM2_CONF` when it loads the module: every process that uses
//! the token gets `env()`. A token "unplugged" is its directory moved away.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const PIN: &str = "4711-token-pin";

pub struct SoftHsm {
    dir: PathBuf,
    conf: PathBuf,
}

fn run(command: &mut Command) -> Vec<u8> {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e} (scripts/test installs softhsm2 and opensc)"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

impl SoftHsm {
    /// A token `label` with the user PIN `PIN`, in a SoftHSM2 of its own under `dir`.
    pub fn new(dir: &Path, label: &str) -> Self {
        let hsm = Self {
            dir: dir.join("softhsm"),
            conf: dir.join("softhsm2.conf"),
        };
        std::fs::create_dir_all(hsm.tokens()).unwrap();
        std::fs::write(
            &hsm.conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                hsm.tokens().display()
            ),
        )
        .unwrap();
        run(Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &hsm.conf)
            .args(["--init-token", "--free", "--label", label, "--pin", PIN])
            .args(["--so-pin", "so-pin-0815"]));
        hsm
    }

    fn tokens(&self) -> PathBuf {
        self.dir.join("tokens")
    }

    /// What every process using the token needs.
    pub fn env(&self) -> (&'static str, PathBuf) {
        ("SOFTHSM2_CONF", self.conf.clone())
    }

    /// `pkcs11-tool` on token `token`.
    fn tool(&self, token: &str) -> Command {
        let mut command = Command::new("pkcs11-tool");
        command
            .env("SOFTHSM2_CONF", &self.conf)
            .args(["--module", MODULE, "--token-label", token]);
        command
    }

    /// Generates a key pair `label` of `key_type` (as pkcs11-tool names it) in token `token`.
    fn generate(&self, token: &str, label: &str, key_type: &str) {
        run(self
            .tool(token)
            .args([
                "--login",
                "--pin",
                PIN,
                "--keypairgen",
                "--key-type",
                key_type,
            ])
            .args(["--label", label]));
    }

    /// Generates an ECDSA P-256 key pair `label` in token `token`; returns the public key's
    /// SubjectPublicKeyInfo (DER).
    pub fn generate_p256(&self, token: &str, label: &str) -> Vec<u8> {
        self.generate(token, label, "EC:prime256v1");
        let public = self.dir.join(format!("{label}.pub.der"));
        run(self
            .tool(token)
            .args(["--read-object", "--type", "pubkey", "--label", label])
            .arg("--output-file")
            .arg(&public));
        std::fs::read(public).unwrap()
    }

    /// Generates an Ed25519 key pair `label` in token `token` (for the transparency log).
    pub fn generate_ed25519(&self, token: &str, label: &str) {
        self.generate(token, label, "EC:edwards25519");
    }

    /// The RFC 7512 URI of key `label` in token `token`, the PIN in `pin_file`.
    pub fn uri(&self, token: &str, label: &str, pin_file: &Path) -> String {
        std::fs::write(pin_file, format!("{PIN}\n")).unwrap();
        format!(
            "pkcs11:token={token};object={label}?module-path={MODULE}&pin-source=file:{}",
            pin_file.display()
        )
    }

    /// The token directory moved away (a token unplugged) …
    pub fn unplug(&self) {
        std::fs::rename(self.tokens(), self.dir.join("away")).unwrap();
    }

    /// … and back.
    pub fn plug_in(&self) {
        std::fs::rename(self.dir.join("away"), self.tokens()).unwrap();
    }
}
