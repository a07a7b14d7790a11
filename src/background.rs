//! Work that must not delay staff and list requests: it runs on threads of the lowest CPU
//! priority (nice 19). An otherwise idle machine still gives such a thread every core; a busy
//! one serves requests first.
//!
//! Two kinds of work go here: a publication's CPU-heavy steps (a 10 000-Zorgaanbieder list keeps
//! both cores of a small machine busy for a quarter of a second), and freeing large values —
//! the parsed entries of a 10 000-Zorgaanbieder version are hundreds of thousands of
//! allocations, ~10 ms to free, which on an async worker stalls every request that worker
//! holds.

use std::any::Any;
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(thread), 19) {
        tracing::debug!(error = %e, "background work runs at normal priority");
    }
}

/// Runs `work` on a new thread of the lowest priority (threads it starts inherit it) and
/// waits for it. Call from a blocking context, never on an async worker.
pub fn run<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                lower_priority();
                work()
            })
            .join()
            .expect("background work does not panic")
    })
}

type Garbage = Box<dyn Any + Send>;

/// Frees `value` later, on the one low-priority thread that frees values for this process.
pub fn drop_later<T: Send + 'static>(value: T) {
    static FREER: OnceLock<Sender<Garbage>> = OnceLock::new();
    let freer = FREER.get_or_init(|| {
        let (sender, garbage) = channel::<Garbage>();
        std::thread::Builder::new()
            .name("freer".into())
            .spawn(move || {
                lower_priority();
                for value in garbage {
                    drop(value);
                }
            })
            .expect("the freeing thread starts");
        sender
    });
    // The thread lives as long as the process, so sending cannot fail; if it somehow did,
    // the value comes back in the error and is freed here, which is only slower.
    let _ = freer.send(Box::new(value));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc::sync_channel;

    /// Tells its test on which thread it was freed.
    struct Witness(std::sync::mpsc::SyncSender<Option<String>>);

    impl Drop for Witness {
        fn drop(&mut self) {
            let _ = self
                .0
                .send(std::thread::current().name().map(str::to_owned));
        }
    }

    #[test]
    fn a_value_dropped_later_is_freed_on_the_freeing_thread() {
        let (tell, told) = sync_channel(1);
        drop_later(Witness(tell));
        let thread = told
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the value is freed");
        assert_eq!(thread.as_deref(), Some("freer"));
    }

    #[test]
    fn background_work_runs_at_the_lowest_priority() {
        let nice = run(|| rustix::process::getpriority_process(None).expect("own priority"));
        assert_eq!(nice, 19);
        let shared = Arc::new(5);
        assert_eq!(run(|| *shared + 1), 6, "work borrows from its caller");
    }
}
