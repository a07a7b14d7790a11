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

/// The token served over a socket by `p11-kit server` (Debian `p11-kit`), as a network HSM
/// is: the node loads p11-kit's client module, which forwards every call. Stopping the server
/// (SIGSTOP) makes the token hang instead of fail.
pub struct ProxiedToken {
    /// `P11_KIT_SERVER_ADDRESS` for the client module.
    pub address: String,
    pid: u32,
}

/// Where Debian puts p11-kit's client module.
pub const P11_KIT_CLIENT: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so";

impl ProxiedToken {
    /// Serves token `token` of `hsm`; its socket in `dir`.
    pub fn serve(hsm: &SoftHsm, token: &str, dir: &Path) -> Self {
        let runtime = dir.join("p11-kit-run");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        // It forks into the background: its words go to a file (a pipe would stay open in
        // the server, and reading it would never end).
        let words = dir.join("p11-kit-server.env");
        let status = Command::new("p11-kit")
            .env("SOFTHSM2_CONF", &hsm.conf)
            .env("XDG_RUNTIME_DIR", &runtime)
            .args(["server", "--provider", MODULE])
            .arg(format!("pkcs11:token={token}"))
            .stdout(std::fs::File::create(&words).unwrap())
            .status()
            .expect("p11-kit is installed (scripts/test)");
        assert!(status.success());
        let said = std::fs::read_to_string(&words).unwrap();
        // P11_KIT_SERVER_ADDRESS=unix:path=…; export …;\nP11_KIT_SERVER_PID=…; export …;
        let value = |name: &str| {
            said.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .and_then(|rest| rest.split(';').next())
                .unwrap_or_else(|| panic!("p11-kit server said {said}"))
                .to_owned()
        };
        Self {
            address: value("P11_KIT_SERVER_ADDRESS"),
            pid: value("P11_KIT_SERVER_PID").parse().unwrap(),
        }
    }

    /// Signals the server and the `p11-kit-remote` it runs for each connection.
    fn signal(&self, signal: &str) {
        let pid = self.pid.to_string();
        let _ = Command::new("pkill").args([signal, "-P", &pid]).status();
        let _ = Command::new("kill").args([signal, &pid]).status();
    }

    /// The HSM stops answering …
    pub fn hang(&self) {
        self.signal("-STOP");
    }

    /// … and answers again.
    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for ProxiedToken {
    fn drop(&mut self) {
        self.signal("-KILL");
    }
}
