//! Work that must not delay staff and list requests, nor the publications they wait for: it
//! runs on one thread of the lowest CPU priority (nice 19). An otherwise idle machine still
//! gives it a core; a busy one serves requests and publishes first.
//!
//! Two kinds of work go here: freeing large values — the parsed entries of a 10 000-
//! Zorgaanbieder version are hundreds of thousands of allocations, ~10 ms to free, which on an
//! async worker stalls every request that worker holds; and the content codings a served
//! version gains after it is served (about a second of CPU at 10 000 Zorgaanbieders).
//!
//! A publication (issue 25) is bounded work (~0.1 s of two cores at 10 000 Zorgaanbieders)
//! that an approval and the mutation SLA wait for: `run_prioritised` starts it ten nice
//! levels below the request workers, so that requests go first while it runs, and lifts it
//! to normal priority after 0.3 s, so that a saturating read load cannot starve it. At nice
//! 19 throughout, an approval under 256 saturating connections waited 9.5 s; at normal
//! priority throughout, requests waited behind every publication (mutation mix p99 ×3).
//! Lifting needs `LimitNICE=+0` (deploy/stelselnode.service) when not run as root.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

fn set_own_priority(nice: i32) {
    let thread = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(thread), nice) {
        tracing::debug!(error = %e, nice, "work runs at normal priority");
    }
}

fn lower_priority() {
    set_own_priority(19);
}

/// How a publication is scheduled (issue 25): it starts `below_normal` nice levels under
/// the threads that serve requests, so that staff and list requests are answered first while
/// it runs; after `lift_after` its threads are lifted to normal priority, so that a
/// saturating read load cannot starve it.
#[derive(Debug, Clone, Copy)]
pub struct Priority {
    /// The threads' name (at most 15 bytes, Linux's limit): the threads the work starts
    /// inherit it (Linux copies a thread's name to the threads it creates), so the lift
    /// finds them all by it.
    pub name: &'static str,
    pub below_normal: i32,
    pub lift_after: Duration,
}

/// A publication at 10 000 Zorgaanbieders is ~0.1 s of two cores on an idle machine.
/// Measured (`benches/mutations-load.sh`, 10k): without the lift, at nice 19, an approval
/// under 256 saturating connections waited 9.5 s; lifted after 0.3 s it is served in ~0.6 s.
pub const PUBLICATION: Priority = Priority {
    name: "publication",
    below_normal: 10,
    lift_after: Duration::from_millis(300),
};

/// Runs `work` on a new thread scheduled as `priority` says and waits for it. A new thread,
/// because a pooled one would keep the priority. Call from a blocking context, never on an
/// async worker.
pub fn run_prioritised<T: Send>(priority: Priority, work: impl FnOnce() -> T + Send) -> T {
    let normal = rustix::process::getpriority_process(None).unwrap_or(0);
    let (done, finished) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::scope(|scope| {
        let working = std::thread::Builder::new()
            .name(priority.name.into())
            .spawn_scoped(scope, move || {
                set_own_priority((normal + priority.below_normal).min(19));
                let outcome = work();
                let _ = done.send(());
                outcome
            })
            .expect("a thread starts");
        let mut wait = priority.lift_after;
        // Threads the work starts after a lift inherit its starting priority: look again.
        while let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(wait) {
            lift(priority.name, normal);
            wait = Duration::from_millis(50);
        }
        working.join().expect("prioritised work does not panic")
    })
}

/// Moves every thread of this process named `name` to priority `normal`.
fn lift(name: &str, normal: i32) {
    static REFUSED: AtomicBool = AtomicBool::new(false);
    let Ok(threads) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for thread in threads.filter_map(Result::ok) {
        let named = std::fs::read_to_string(thread.path().join("comm"))
            .is_ok_and(|comm| comm.trim_end() == name);
        let tid = thread.file_name().to_str().and_then(|t| t.parse().ok());
        let Some(tid) = tid
            .filter(|_| named)
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        if rustix::process::getpriority_process(Some(tid)).is_ok_and(|nice| nice <= normal) {
            continue;
        }
        if let Err(e) = rustix::process::setpriority_process(Some(tid), normal)
            && !REFUSED.swap(true, Ordering::Relaxed)
        {
            // Lowering a nice value needs RLIMIT_NICE (the unit's LimitNICE=) or CAP_SYS_NICE.
            tracing::warn!(error = %e, "a publication cannot be lifted to normal priority; \
                under a heavy read load it may wait long (deploy/stelselnode.service: LimitNICE)");
        }
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
    fn prioritised_work_starts_below_normal_and_is_lifted_with_its_threads_after_its_deadline() {
        let normal = rustix::process::getpriority_process(None).expect("own priority");
        let nice = || rustix::process::getpriority_process(None).expect("own priority");
        let priority = Priority {
            name: "prio-test",
            below_normal: 7,
            lift_after: Duration::from_millis(100),
        };
        // Work done before its deadline keeps its low priority.
        assert_eq!(run_prioritised(priority, nice), (normal + 7).min(19));
        // Longer work, and a thread it starts, are lifted.
        let (started, lifted) = run_prioritised(priority, || {
            let started = nice();
            let helper = std::thread::spawn(move || {
                let mut now = nice();
                while now != normal {
                    std::thread::sleep(Duration::from_millis(5));
                    now = nice();
                }
                now
            });
            (started, helper.join().expect("the helper ends once lifted"))
        });
        assert_eq!((started, lifted), ((normal + 7).min(19), normal));
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
