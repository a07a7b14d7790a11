//! Real receivers for the node's notifications: an SMTP server (Python's aiosmtpd, writing
//! a Maildir) and an HTTP server that keeps every webhook body.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::Value;

use super::free_port;

/// The Python that has aiosmtpd: Debian's python3-aiosmtpd, which scripts/test installs.
fn smtp_python() -> String {
    std::env::var("SMTP_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

/// An aiosmtpd server on a free port; stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    child: Child,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let maildir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new(smtp_python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("aiosmtpd: install python3-aiosmtpd (scripts/test does)");
        // Ready when it accepts connections.
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    port,
                    child,
                    maildir,
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not start listening on {port}");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, as text.
    pub fn messages(&self) -> Vec<String> {
        let new: PathBuf = self.maildir.path().join("mail/new");
        let Ok(entries) = std::fs::read_dir(new) else {
            return Vec::new();
        };
        entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP server that answers 200 to every POST and keeps its JSON body.
pub struct WebhookReceiver {
    pub address: SocketAddr,
    pub received: Arc<Mutex<Vec<Value>>>,
    handle: actix_web::dev::ServerHandle,
}

impl WebhookReceiver {
    pub fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        let server = HttpServer::new(move || {
            let kept = kept.clone();
            App::new().default_service(web::to(move |body: web::Json<Value>| {
                let kept = kept.clone();
                async move {
                    kept.lock().unwrap().push(body.into_inner());
                    HttpResponse::Ok().finish()
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let address = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            address,
            received,
            handle,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/medmij/sla", self.address)
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

/// A URL on which nothing listens (a refused connection).
pub fn nothing_listens() -> u16 {
    free_port()
}
