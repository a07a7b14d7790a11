//! A load balancer without affinity, as small as a test needs: a TCP proxy that passes TLS
//! through to one of several backends, and a plain-HTTP control URL that points it at another
//! backend and closes the connections open to the previous one (so a browser's next request
//! opens a new connection, to the new backend).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct SwitchingProxy {
    pub address: SocketAddr,
    /// `GET <control>/switch/<i>` sends new connections to backend `i`.
    pub control: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for SwitchingProxy {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl SwitchingProxy {
    /// Starts with every connection going to `backends[0]`.
    pub async fn start(backends: Vec<SocketAddr>) -> Self {
        let count = backends.len();
        let backends = Arc::new(backends);
        let (target, _) = watch::channel(0usize);
        let target = Arc::new(target);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (address, control_address) = (
            listener.local_addr().unwrap(),
            control.local_addr().unwrap(),
        );
        let proxy = {
            let target = target.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let mut switched = target.subscribe();
                    let backend = backends[*switched.borrow_and_update()];
                    tokio::spawn(async move {
                        let Ok(mut upstream) = TcpStream::connect(backend).await else {
                            return;
                        };
                        let mut client = client;
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                            // Pointed elsewhere: both sides are closed here.
                            _ = switched.changed() => {}
                        }
                    });
                }
            })
        };
        let switch = tokio::spawn(async move {
            while let Ok((mut caller, _)) = control.accept().await {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match caller.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request);
                let backend = request
                    .split_whitespace()
                    .nth(1)
                    .and_then(|path| path.strip_prefix("/switch/"))
                    .and_then(|i| i.parse::<usize>().ok())
                    .filter(|i| *i < count);
                let status = match backend {
                    Some(i) => {
                        target.send_replace(i);
                        "200 OK"
                    }
                    None => "404 Not Found",
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = caller.write_all(answer.as_bytes()).await;
            }
        });
        Self {
            address,
            control: control_address,
            tasks: vec![proxy, switch],
        }
    }
}
