//! Group commit: many writers, one transaction and one fsync for all batches waiting at the
//! time, in submission order. In `Periodic` mode writers do not wait at all; batches are
//! committed by `flush`, which the owner calls every N ms (like Redis's `appendfsync
//! everysec`), and on drop.

use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::{Durability, Error, KvStore, Result, WriteBatch};

/// What a write promises when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitMode {
    /// Durable on return; concurrent writers share one fsync.
    Durable,
    /// Returns at once; durable after the next `flush` (so a crash loses at most the writes
    /// since the last flush, never part of a batch).
    Periodic,
}

#[derive(Default)]
struct Queue {
    pending: Vec<WriteBatch>,
    /// Sequence number of the last submitted batch.
    submitted: u64,
    /// Every batch up to this sequence number is committed.
    committed: u64,
    /// A thread is committing right now.
    leader: bool,
    /// Ticket ranges (inclusive) whose commit failed, with the error, for their writers.
    failed: Vec<(u64, u64, Error)>,
    /// Why the store stopped taking writes: set by the first commit that failed or panicked.
    /// A store whose commit failed half-way (a panic inside the backend, an I/O error that
    /// leaves redb refusing further writes) cannot be trusted with more: every later write
    /// fails at once with this reason instead of waiting or guessing, and the owner reports it
    /// (`/health` says `unhealthy`).
    broken: Option<String>,
}

pub struct GroupCommit<S: KvStore> {
    store: S,
    mode: CommitMode,
    queue: Mutex<Queue>,
    done: Condvar,
}

impl<S: KvStore> std::fmt::Debug for GroupCommit<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("mode", &self.mode)
            .finish()
    }
}

impl<S: KvStore> GroupCommit<S> {
    pub fn new(store: S, mode: CommitMode) -> GroupCommit<S> {
        GroupCommit {
            store,
            mode,
            queue: Mutex::new(Queue::default()),
            done: Condvar::new(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn mode(&self) -> CommitMode {
        self.mode
    }

    /// Why the store refuses writes, once a commit has failed or panicked (`None` while it is
    /// healthy).
    pub fn failure(&self) -> Option<String> {
        self.lock().broken.clone()
    }

    /// Queues `batch` and returns its ticket. Batches are applied in the order they are
    /// submitted, so callers that must keep an order submit while holding their own lock.
    pub fn submit(&self, batch: WriteBatch) -> u64 {
        let mut queue = self.lock();
        queue.pending.push(batch);
        queue.submitted += 1;
        queue.submitted
    }

    /// In `Durable` mode, blocks until the batch with `ticket` is durable (committing it and
    /// every batch queued with it when no other thread is doing so). In `Periodic` mode,
    /// returns at once.
    pub fn wait(&self, ticket: u64) -> Result<()> {
        if self.mode == CommitMode::Periodic {
            return Ok(());
        }
        self.commit_until(ticket)
    }

    /// Submits and waits: the whole write in one call.
    pub fn write(&self, batch: WriteBatch) -> Result<()> {
        let ticket = self.submit(batch);
        self.wait(ticket)
    }

    /// Commits every queued batch durably.
    pub fn flush(&self) -> Result<()> {
        let ticket = self.lock().submitted;
        self.commit_until(ticket)
    }

    fn commit_until(&self, ticket: u64) -> Result<()> {
        let mut queue = self.lock();
        loop {
            if let Some((_, _, err)) = queue
                .failed
                .iter()
                .find(|(from, to, _)| (*from..=*to).contains(&ticket))
            {
                return Err(err.clone());
            }
            if queue.committed >= ticket {
                return Ok(());
            }
            if queue.leader {
                queue = self.done.wait(queue).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: take everything queued so far and commit it as one transaction.
            let batches = std::mem::take(&mut queue.pending);
            let from = queue.committed + 1;
            let upto = queue.submitted;
            let result = match &queue.broken {
                // A broken store commits nothing more: its batches fail with the first reason.
                Some(reason) => Err(Error::Failed(reason.clone())),
                None => {
                    queue.leader = true;
                    drop(queue);
                    let result = self.commit(batches);
                    queue = self.lock();
                    queue.leader = false;
                    result
                }
            };
            queue.committed = upto;
            if let Err(err) = &result {
                if queue.broken.is_none() {
                    queue.broken = Some(err.to_string());
                }
                queue.failed.push((from, upto, err.clone()));
            }
            self.done.notify_all();
        }
    }

    /// Writes `batches` as one durable transaction. A panic inside the backend is caught and
    /// becomes an error, so that the leader always hands leadership back and every waiter
    /// gets an answer.
    fn commit(&self, batches: Vec<WriteBatch>) -> Result<()> {
        let mut merged = WriteBatch::default();
        for batch in batches {
            merged.ops.extend(batch.ops);
        }
        let store = &self.store;
        match std::panic::catch_unwind(AssertUnwindSafe(|| {
            store.write_with(merged, Durability::Immediate)
        })) {
            Ok(result) => result,
            Err(panic) => {
                let what = crate::panic_message(&*panic);
                Err(Error::Corrupt(format!(
                    "the storage engine panicked during a commit: {what}"
                )))
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<S: KvStore> Drop for GroupCommit<S> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
