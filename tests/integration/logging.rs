//! The log of a `serve` process (issue 25, item 4): written by a thread of its own, it still
//! reaches stderr while the node serves — one access-log line per request, without colour
//! codes when stderr is a file — and what is queued is written out at a clean stop.

use std::time::{Duration, Instant};

use super::support::http_client::plain_get;
use super::support::process::NodeFiles;

#[tokio::test(flavor = "multi_thread")]
async fn the_access_log_is_written_while_serving_and_at_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("node.db").display());
    let files =
        NodeFiles::prepare(dir.path(), url).with_setting("LOG", "warn,stelselnode::access=info");
    let mut node = files.serve().await;
    let log = dir.path().join(format!("serve-{}.log", files.ops().port()));
    let access_lines = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| l.contains("stelselnode::access") && l.contains("route=\"/healthz\""))
            .count()
    };
    for _ in 0..3 {
        assert_eq!(plain_get(files.ops(), "/healthz").await.status, 200);
    }
    // Written while the node serves, not only when it stops.
    let started = Instant::now();
    while access_lines() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(plain_get(files.ops(), "/healthz").await.status, 200);
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(node.wait().unwrap().success(), "a clean stop");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        access_lines(),
        4,
        "every request, the last one too:\n{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a file:\n{text}"
    );
}
