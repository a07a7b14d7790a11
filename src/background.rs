//! Work that must not delay staff and list requests, nor the publications they wait for: it
//! runs on one thread of the lowest CPU priority (nice 19). An otherwise idle machine still
//! gives it a core; a busy one serves requests and publishes first.
//!
//! Two kinds of work go here: freeing large values — the parsed entries of a 10 000-
//! Zorgaanbieder version are hundreds of thousands of allocations, ~10 ms to free, which on an
//! async worker stalls every request that worker holds; and the content codings a served
//! version gains after it is served (about a second of CPU at 10 000 Zorgaanbieders).
//!
//! A publication itself runs at normal priority (issue 25): it is bounded work (~0.1 s of two
//! cores at 10 000 Zorgaanbieders) that an approval and the mutation SLA wait for. At nice 19
//! it had a weight of 15 against a request worker's 1 024, so under a saturating read load an
//! approval waited many seconds, and the codings of the previous version competed with it as
//! equals.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(thread), 19) {
        tracing::debug!(error = %e, "background work runs at normal priority");
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `work` later, in order, on the one low-priority thread for such jobs in this process:
/// freeing large values, and compressing a served version into more content codings.
pub fn run_later(work: impl FnOnce() + Send + 'static) {
    static LATER: OnceLock<Sender<Job>> = OnceLock::new();
    let later = LATER.get_or_init(|| {
        let (sender, jobs) = channel::<Job>();
        std::thread::Builder::new()
            .name("later".into())
            .spawn(move || {
                lower_priority();
                for job in jobs {
                    job();
                }
            })
            .expect("the thread for later work starts");
        sender
    });
    // The thread lives as long as the process, so sending cannot fail; if it somehow did,
    // the job is dropped with the error (a value is then freed here, which is only slower).
    let _ = later.send(Box::new(work));
}

/// Publications running now (`urgent`).
static URGENT: AtomicUsize = AtomicUsize::new(0);
static URGENT_DONE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

/// Marks a publication as running until the guard is dropped: later work that reaches a
/// `yield_to_urgent` point waits for it. Even at nice 19 the codings of the previous version
/// slowed a publication by a tenth (both stream tens of megabytes through the same caches and
/// memory), when approvals follow each other.
pub fn urgent() -> Urgent {
    URGENT.fetch_add(1, Ordering::SeqCst);
    Urgent(())
}

pub struct Urgent(());

impl Drop for Urgent {
    fn drop(&mut self) {
        let _turn = URGENT_DONE.0.lock().unwrap_or_else(|e| e.into_inner());
        URGENT.fetch_sub(1, Ordering::SeqCst);
        URGENT_DONE.1.notify_all();
    }
}

/// Called by later work between pieces: waits while a publication runs, at most a second at a
/// time, so that later work is never starved for good.
pub fn yield_to_urgent() {
    if URGENT.load(Ordering::SeqCst) == 0 {
        return;
    }
    let turn = URGENT_DONE.0.lock().unwrap_or_else(|e| e.into_inner());
    let _ = URGENT_DONE
        .1
        .wait_timeout_while(turn, Duration::from_secs(1), |_| {
            URGENT.load(Ordering::SeqCst) > 0
        });
}

/// Frees `value` later, on the low-priority thread of `run_later`.
pub fn drop_later<T: Send + 'static>(value: T) {
    run_later(move || drop(value));
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn a_value_dropped_later_is_freed_on_the_thread_for_later_work() {
        let (tell, told) = sync_channel(1);
        drop_later(Witness(tell));
        let thread = told
            .recv_timeout(Duration::from_secs(10))
            .expect("the value is freed");
        assert_eq!(thread.as_deref(), Some("later"));
    }

    #[test]
    fn later_work_waits_at_its_yield_points_while_a_publication_runs() {
        let publication = urgent();
        let (tell, told) = sync_channel(1);
        run_later(move || {
            yield_to_urgent();
            let _ = tell.send(());
        });
        assert!(
            told.recv_timeout(Duration::from_millis(300)).is_err(),
            "later work went on during the publication"
        );
        drop(publication);
        told.recv_timeout(Duration::from_secs(10))
            .expect("later work goes on after the publication");
    }

    #[test]
    fn later_work_runs_at_the_lowest_priority() {
        let (tell, told) = sync_channel(1);
        run_later(move || {
            let nice = rustix::process::getpriority_process(None).expect("own priority");
            let _ = tell.send(nice);
        });
        let nice = told
            .recv_timeout(Duration::from_secs(10))
            .expect("the work runs");
        assert_eq!(nice, 19);
    }
}
