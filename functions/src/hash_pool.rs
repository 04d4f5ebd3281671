//! A fixed pool of threads for password hashing (`HASH_CONCURRENCY` threads, `HASH_QUEUE`
//! jobs waiting): each argon2 hash takes 19 MiB, so how many run at once is what bounds the
//! memory of a burst of sign-ins, and a job that finds the queue full is refused at once.
//!
//! Dedicated threads rather than tokio's blocking pool: the blocking pool starts a new thread
//! whenever none is idle at that instant, and each new thread's allocator arena keeps its own
//! freed 19 MiB. Measured with 65 parallel sign-ins behind a 2-permit semaphore on the blocking
//! pool: +308 MiB peak RSS; with two dedicated threads the arenas stay two.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

/// Why a job was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every thread is busy and the queue is full: try again shortly.
    Full,
    /// The pool's threads are gone (could not be started, or a job panicked in each).
    Gone,
}

/// The pool; its threads end when it is dropped (after the jobs already queued).
pub struct HashPool {
    jobs: SyncSender<Job>,
}

impl HashPool {
    /// Starts `threads` threads (at least 1) with room for `queue` waiting jobs.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("hash-{n}"))
                .spawn(move || work(&rx))?;
        }
        Ok(Self { jobs })
    }

    /// Runs `job` on a pool thread and returns its result; refused at once when the pool is
    /// full. A job keeps running if the caller stops waiting (its place stays taken).
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller may have gone: nobody to tell then.
            let _ = tx.send(job());
        });
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => Refused::Full,
            TrySendError::Disconnected(_) => Refused::Gone,
        })?;
        rx.await.map_err(|_| Refused::Gone)
    }
}

/// One pool thread: takes jobs until the pool is dropped.
fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = next else { return };
        // A panicking job (a bug) loses its answer (the caller sees `Gone`), not the thread.
        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
            eprintln!("a password hashing job panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::time::Duration;

    #[tokio::test]
    async fn runs_jobs_and_refuses_past_threads_plus_queue() {
        let pool = HashPool::new(1, 1).expect("pool");
        assert_eq!(pool.run(|| 2 + 2).await, Ok(4));
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let running = pool.run(move || {
            let _ = started_tx.send(());
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
            7
        });
        tokio::pin!(running);
        assert!(running.as_mut().now_or_never().is_none(), "submitted");
        started
            .recv_timeout(Duration::from_secs(30))
            .expect("running");
        // One running, one queued (its caller gone: it still runs), the third refused.
        assert!(pool.run(|| 0).now_or_never().is_none(), "queued");
        assert_eq!(pool.run(|| 0).await, Err(Refused::Full));
        release.send(()).expect("release");
        assert_eq!(running.await, Ok(7));
        assert_eq!(pool.run(|| 1).await, Ok(1), "room again");
    }
}
