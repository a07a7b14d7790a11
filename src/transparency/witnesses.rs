//! The client side of C2SP tlog-witness (issue 26): each new checkpoint goes to every
//! configured witness as `add-checkpoint` with the consistency proof from the size that
//! witness cosigned last; the cosignature that comes back is checked against the witness's
//! key before the node serves it on `/log/checkpoint`. A witness refuses a checkpoint that is
//! not consistent with one it cosigned before — a split view needs every witness's help.
//!
//! Concurrency: witnesses are asked one request each, side by side, after the log caught up
//! (after a publication, and with the refresh loop, which retries a witness that failed).
//! Each replica asks for the checkpoint it serves; a witness that another replica moved on
//! answers 409 with its size, and the request is made again from there. What a witness
//! cosigned last is remembered in memory only: a restarted node learns it from that 409.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::{StatusCode, Url};
use signed_note::{Note, Signature, Verifier};

use super::witness_key::{WitnessKey, WitnessKeyError};
use crate::config::WitnessConfig;

/// A witness answers within this, or is asked again with the next round.
const TIMEOUT: Duration = Duration::from_secs(10);
/// A cosignature answer is a line or two; a 409 a number.
const MAX_ANSWER: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WitnessConfigError {
    #[error("transparency.witnesses: {url}: the URL must be http(s)://host[:port]/[prefix]")]
    Url { url: String },
    #[error("transparency.witnesses: {url}: {source}")]
    Key {
        url: String,
        source: WitnessKeyError,
    },
    #[error("transparency.witnesses: the HTTP client: {0}")]
    Client(String),
}

/// Why a witness gave no cosignature this time.
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("{0}")]
    Http(String),
    #[error("answered {status}: {text}")]
    Refused { status: u16, text: String },
    #[error("its answer holds no valid cosignature by its key")]
    NoCosignature,
    #[error("it cosigned a larger tree ({0} leaves) than this node holds yet")]
    Ahead(u64),
}

/// One configured witness.
pub struct Witness {
    key: WitnessKey,
    add_checkpoint: Url,
    /// The tree size it cosigned last, as far as this node knows.
    cosigned: Mutex<Option<u64>>,
    /// Why it gave no cosignature the last time it was asked.
    trouble: Mutex<Option<String>>,
}

impl Witness {
    pub fn name(&self) -> &str {
        self.key.name()
    }

    pub fn key(&self) -> &WitnessKey {
        &self.key
    }

    /// The tree size it cosigned last, as far as this node knows.
    pub fn cosigned(&self) -> Option<u64> {
        *self.cosigned.lock().expect("witness lock")
    }

    /// Whether it gave no cosignature the last time it was asked.
    pub fn failing(&self) -> bool {
        self.trouble.lock().expect("witness lock").is_some()
    }

    /// Remembers how the last request went; a new trouble, and the end of one, are logged
    /// once (the refresh loop asks a failing witness again every few seconds).
    pub(super) fn record(&self, outcome: Option<WitnessError>) {
        let now = outcome.map(|e| e.to_string());
        let mut trouble = self.trouble.lock().expect("witness lock");
        if *trouble != now {
            match &now {
                Some(error) => {
                    tracing::warn!(witness = %self.name(), %error, "the witness gave no cosignature");
                }
                None => tracing::info!(witness = %self.name(), "the witness cosigns again"),
            }
            *trouble = now;
        }
    }
}

/// The witnesses of this node's log.
pub struct Witnesses {
    all: Vec<Witness>,
    /// `None` without witnesses.
    http: Option<reqwest::Client>,
}

impl Witnesses {
    pub fn new(configs: &[WitnessConfig]) -> Result<Self, WitnessConfigError> {
        let mut all = Vec::new();
        for config in configs {
            let url = Url::parse(&config.url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .filter(|u| u.query().is_none() && u.username().is_empty())
                .and_then(|u| {
                    let prefix = u.path().trim_end_matches('/').to_owned();
                    u.join(&format!("{prefix}/add-checkpoint")).ok()
                })
                .ok_or_else(|| WitnessConfigError::Url {
                    url: config.url.clone(),
                })?;
            let key = WitnessKey::parse(&config.verifier_key).map_err(|source| {
                WitnessConfigError::Key {
                    url: config.url.clone(),
                    source,
                }
            })?;
            all.push(Witness {
                key,
                add_checkpoint: url,
                cosigned: Mutex::new(None),
                trouble: Mutex::new(None),
            });
        }
        // The system's CAs are read only when there is a witness to ask.
        let http = match all.is_empty() {
            true => None,
            false => Some(
                crate::tls::outgoing::public_client(TIMEOUT).map_err(WitnessConfigError::Client)?,
            ),
        };
        Ok(Self { all, http })
    }

    /// No witnesses.
    pub fn none() -> Self {
        Self::new(&[]).expect("no witness, nothing to go wrong")
    }

    pub fn all(&self) -> &[Witness] {
        &self.all
    }

    /// Asks `witness` to cosign `checkpoint` (signed by the log, of `size` leaves); `proof(old)`
    /// is the consistency proof from `old` leaves to `size`. Returns its cosignature.
    pub async fn cosign(
        &self,
        witness: &Witness,
        checkpoint: &[u8],
        size: u64,
        proof: impl Fn(u64) -> Option<Vec<[u8; 32]>>,
    ) -> Result<Signature, WitnessError> {
        let note = Note::from_bytes(checkpoint).map_err(|e| WitnessError::Http(e.to_string()))?;
        let mut old = witness.cosigned().unwrap_or(0);
        // Twice at most: a 409 tells the size the witness holds.
        for _ in 0..2 {
            if old > size {
                return Err(WitnessError::Ahead(old));
            }
            // From nothing, or to the size it holds already (the same root): no proof.
            let hashes = match old {
                0 => Vec::new(),
                old if old == size => Vec::new(),
                old => proof(old).ok_or(WitnessError::Ahead(old))?,
            };
            let mut body = format!("old {old}\n");
            for hash in hashes {
                body.push_str(&BASE64.encode(hash));
                body.push('\n');
            }
            body.push('\n');
            let mut body = body.into_bytes();
            body.extend_from_slice(checkpoint);
            let (status, answer) = self.post(&witness.add_checkpoint, body).await?;
            match status {
                StatusCode::OK => {
                    let signature = cosignature_in(&answer, witness, note.text())?;
                    *witness.cosigned.lock().expect("witness lock") = Some(size);
                    return Ok(signature);
                }
                StatusCode::CONFLICT => {
                    old = std::str::from_utf8(&answer)
                        .ok()
                        .and_then(|text| text.trim().parse().ok())
                        .ok_or_else(|| refused(status, &answer))?;
                    *witness.cosigned.lock().expect("witness lock") = Some(old);
                }
                _ => return Err(refused(status, &answer)),
            }
        }
        Err(WitnessError::Refused {
            status: 409,
            text: "its size kept changing".into(),
        })
    }

    async fn post(&self, url: &Url, body: Vec<u8>) -> Result<(StatusCode, Vec<u8>), WitnessError> {
        let http = |e: reqwest::Error| WitnessError::Http(e.without_url().to_string());
        let http_client = self
            .http
            .as_ref()
            .ok_or_else(|| WitnessError::Http("no witness is configured".into()))?;
        let mut response = http_client
            .post(url.clone())
            .body(body)
            .send()
            .await
            .map_err(http)?;
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            if answer.len() + chunk.len() > MAX_ANSWER {
                return Err(WitnessError::Http(format!(
                    "the answer is larger than {MAX_ANSWER} bytes"
                )));
            }
            answer.extend_from_slice(&chunk);
        }
        Ok((response.status(), answer))
    }
}

/// A refusal in words fit for a log line: the start of the witness's answer, printable.
fn refused(status: StatusCode, answer: &[u8]) -> WitnessError {
    let text: String = String::from_utf8_lossy(answer)
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    WitnessError::Refused {
        status: status.as_u16(),
        text: text.trim().to_owned(),
    }
}

/// The first signature line of `answer` that is `witness`'s and verifies over `text`.
fn cosignature_in(
    answer: &[u8],
    witness: &Witness,
    text: &[u8],
) -> Result<Signature, WitnessError> {
    answer
        .split(|b| *b == b'\n')
        .filter_map(|line| Signature::from_bytes(line).ok())
        .find(|s| {
            s.name() == witness.key.name()
                && s.id() == witness.key.key_id()
                && witness.key.verify(text, s.signature())
        })
        .ok_or(WitnessError::NoCosignature)
}
