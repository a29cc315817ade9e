//! Storage ports of mneme: an ordered key-value store with snapshot reads and atomic write
//! batches, behind a trait with a written contract that every backend must pass
//! ([`conformance`]).
//!
//! Two backends ship: [`MemoryStore`] (tests, ephemeral nodes) and [`RedbStore`], the
//! embedded default (one file, ACID, checksummed commits, MVCC readers). Scale-out backends
//! (PostgreSQL, Redis) implement the same trait behind cargo features. This crate knows
//! nothing of patterns or documents: keys and values are bytes, and callers own their layout
//! (typically a one-byte table prefix and a versioned value encoding).
//!
//! ```
//! use mneme_store::{KvSnapshot, KvStore, MemoryStore, WriteBatch};
//!
//! let store = MemoryStore::default();
//! let mut batch = WriteBatch::default();
//! batch.put(b"p/1".to_vec(), b"one".to_vec());
//! batch.put(b"p/2".to_vec(), b"two".to_vec());
//! store.write(batch)?;
//! let snapshot = store.snapshot()?;
//! assert_eq!(snapshot.get(b"p/1")?, Some(b"one".to_vec()));
//! assert_eq!(snapshot.scan_prefix(b"p/")?.len(), 2);
//! # Ok::<(), mneme_store::Error>(())
//! ```

mod any;
pub mod conformance;
mod group;
mod memory;
mod redb_store;

pub use any::{AnySnapshot, AnyStore};
pub use group::{CommitMode, GroupCommit};
pub use memory::{MemorySnapshot, MemoryStore};
pub use redb_store::{RedbSnapshot, RedbStore, Summary};

/// Errors of a store operation.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// The store's files are unreadable or inconsistent.
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
    /// Another process holds the store open for writing.
    #[error("the store at {0} is in use by another process")]
    Busy(String),
    #[error("storage I/O failed: {0}")]
    Io(String),
    /// An earlier commit failed or panicked, so the store takes no more writes until it is
    /// reopened (restart after fixing the cause; `mneme check` says whether the file is
    /// damaged).
    #[error(
        "the store takes no writes since a commit failed ({0}); restart mneme once the cause is fixed"
    )]
    Failed(String),
}

/// What went wrong, without the details: the part callers branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Corrupt,
    Busy,
    Io,
    Failed,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Busy(_) => ErrorKind::Busy,
            Error::Io(_) => ErrorKind::Io,
            Error::Failed(_) => ErrorKind::Failed,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The message of a caught panic (a backend that panics on damage instead of answering).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

/// One change of a write batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

/// Changes applied all together or not at all, in order (a later op on the same key wins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub ops: Vec<Op>,
}

impl WriteBatch {
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put(key, value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.push(Op::Delete(key));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// When a committed batch reaches stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `write` returns after the batch is fsync'd: a crash loses nothing that was written.
    Immediate,
    /// `write` returns before the fsync; a crash may lose batches written since the last
    /// [`KvStore::flush`] (or the last `Immediate` write), never part of a batch.
    Deferred,
}

/// The callback of [`KvSnapshot::for_each_prefix`]: called with each key and value.
pub type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<()> + 'a;

/// An immutable view of the store as of one moment: later writes are not visible in it.
pub trait KvSnapshot: Send {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Calls `visit` with every pair whose key starts with `prefix`, in key order, without
    /// collecting them (a node with a million patterns loads through this).
    fn for_each_prefix(&self, prefix: &[u8], visit: &mut Visitor<'_>) -> Result<()>;

    /// Every pair whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        self.for_each_prefix(prefix, &mut |key, value| {
            out.push((key.to_vec(), value.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }
}

/// The contract: `write` applies a batch atomically (a snapshot sees all of it or none of it,
/// also after a crash); snapshots never block writers nor see later writes; writes are
/// serialised.
pub trait KvStore: Send + Sync {
    type Snapshot: KvSnapshot;

    fn snapshot(&self) -> Result<Self::Snapshot>;
    fn write_with(&self, batch: WriteBatch, durability: Durability) -> Result<()>;
    /// Makes every `Deferred` write durable.
    fn flush(&self) -> Result<()>;

    fn write(&self, batch: WriteBatch) -> Result<()> {
        self.write_with(batch, Durability::Immediate)
    }
}
