//! The embedded backend on redb: one file, copy-on-write B-trees, checksummed double commit
//! slots (a crash leaves the last fully committed transaction), MVCC read transactions.
//!
//! redb checks its commit slots, not the pages of its trees: a damaged page can read back as
//! fewer records or other bytes. So each commit also records, in the same transaction, the
//! number of records and an order-independent checksum of all of them ([`Summary`]); opening
//! the store reads every record and compares, and refuses a store that does not match instead
//! of presenting what is left of it as the whole.

use std::path::Path;
use std::sync::Mutex;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::{Durability, Error, KvSnapshot, KvStore, Op, Result, Visitor, WriteBatch};

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
/// mneme's bookkeeping: `summary` is the [`Summary`] of the KV table as of the last commit.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("mneme_meta");
const SUMMARY: &str = "summary";

/// What the records of a store add up to: how many there are and the XOR of each record's
/// checksum (so one record's change updates it without reading the others).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub checksum: u64,
}

impl Summary {
    fn add(&mut self, key: &[u8], value: &[u8]) {
        self.records += 1;
        self.checksum ^= record_checksum(key, value);
    }

    fn remove(&mut self, key: &[u8], value: &[u8]) {
        self.records = self.records.saturating_sub(1);
        self.checksum ^= record_checksum(key, value);
    }

    fn encode(&self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.records.to_le_bytes());
        out[8..].copy_from_slice(&self.checksum.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Summary> {
        let records = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let checksum = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        Some(Summary { records, checksum })
    }
}

/// CRC-32 of the key (with its length) and CRC-32 of the value continued from it.
fn record_checksum(key: &[u8], value: &[u8]) -> u64 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key);
    let of_key = hasher.finalize();
    let mut hasher = crc32fast::Hasher::new_with_initial(of_key);
    hasher.update(value);
    (u64::from(of_key) << 32) | u64::from(hasher.finalize())
}

/// The summary of what `table` holds, read record by record.
fn summarise(table: &impl ReadableTable<&'static [u8], &'static [u8]>) -> Result<Summary> {
    let mut summary = Summary::default();
    for item in table.iter().map_err(storage)? {
        let (key, value) = item.map_err(storage)?;
        summary.add(key.value(), value.value());
    }
    Ok(summary)
}

pub struct RedbStore {
    db: Database,
    path: String,
    /// The summary of the last commit (verified at open), kept by the writers: a commit
    /// computes the next one from it instead of reading it back.
    summary: Mutex<Summary>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish()
    }
}

pub struct RedbSnapshot(redb::ReadTransaction);

fn storage(err: impl std::fmt::Display) -> Error {
    Error::Io(err.to_string())
}

impl RedbStore {
    /// Opens the store file at `path`, creating it (and its table) when missing.
    ///
    /// A damaged file is an error that says so, never a panic: redb panics on some damage
    /// (an invalid page type while it walks the tree at open), and that panic is caught here.
    pub fn open(path: &Path) -> Result<RedbStore> {
        let shown = path.display().to_string();
        match std::panic::catch_unwind(|| RedbStore::open_unguarded(path)) {
            Ok(result) => result,
            Err(panic) => {
                let what = crate::panic_message(&*panic);
                Err(Error::Corrupt(format!(
                    "{shown} is damaged ({what}); restore it from a backup, or move it away to \
                     start with an empty store"
                )))
            }
        }
    }

    fn open_unguarded(path: &Path) -> Result<RedbStore> {
        let shown = path.display().to_string();
        // redb would make an empty file a new store; mneme never leaves one (the file is
        // created with its header), so an empty file is a truncated store.
        if std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.len() == 0) {
            return Err(Error::Corrupt(format!(
                "{shown} is damaged (the file is empty: it was truncated); restore it from a \
                 backup, or delete it to start with an empty store"
            )));
        }
        let db = Database::create(path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Busy(shown.clone()),
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(what)) => {
                damaged(&shown, &what)
            }
            other => Error::Io(format!("{shown}: {other}")),
        })?;
        let txn = db.begin_write().map_err(storage)?;
        let found = {
            let table = txn.open_table(KV).map_err(storage)?;
            let mut meta = txn.open_table(META).map_err(storage)?;
            let found = summarise(&table).map_err(|err| damaged(&shown, &err.to_string()))?;
            let recorded = meta
                .get(SUMMARY)
                .map_err(storage)?
                .map(|v| Summary::decode(v.value()));
            match recorded {
                // A store written before summaries were kept (or a new one): record it now.
                None => {
                    meta.insert(SUMMARY, found.encode().as_slice())
                        .map_err(storage)?;
                }
                Some(recorded) => compare(&shown, found, recorded)?,
            }
            found
        };
        txn.commit().map_err(storage)?;
        Ok(RedbStore {
            db,
            path: shown,
            summary: Mutex::new(found),
        })
    }

    /// The summary of the last commit: what opening the store verified, plus what was
    /// written since.
    pub fn summary(&self) -> Summary {
        *self.summary.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads every record and compares them with the summary of the last commit, as opening
    /// the store does.
    pub fn verify(&self) -> Result<Summary> {
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(KV).map_err(storage)?;
        let found = summarise(&table).map_err(|err| damaged(&self.path, &err.to_string()))?;
        let meta = txn.open_table(META).map_err(storage)?;
        let recorded = meta
            .get(SUMMARY)
            .map_err(storage)?
            .map(|v| Summary::decode(v.value()));
        compare(
            &self.path,
            found,
            recorded.unwrap_or(Some(Summary::default())),
        )?;
        Ok(found)
    }
}

/// Whether the records `found` are those the last commit `recorded` (`None`: its summary
/// record is unreadable).
fn compare(shown: &str, found: Summary, recorded: Option<Summary>) -> Result<()> {
    match recorded {
        Some(recorded) if recorded == found => Ok(()),
        Some(recorded) => Err(damaged(
            shown,
            &format!(
                "it holds {} records where its last commit left {}, or other bytes",
                found.records, recorded.records
            ),
        )),
        None => Err(damaged(shown, "its summary record is unreadable")),
    }
}

fn damaged(shown: &str, what: &str) -> Error {
    Error::Corrupt(format!(
        "{shown} is damaged ({what}); restore it from a backup, or move it away to start with \
         an empty store"
    ))
}

impl KvSnapshot for RedbSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let table = self.0.open_table(KV).map_err(storage)?;
        Ok(table
            .get(key)
            .map_err(storage)?
            .map(|value| value.value().to_vec()))
    }

    fn for_each_prefix(&self, prefix: &[u8], visit: &mut Visitor<'_>) -> Result<()> {
        let table = self.0.open_table(KV).map_err(storage)?;
        for item in table.range(prefix..).map_err(storage)? {
            let (key, value) = item.map_err(storage)?;
            if !key.value().starts_with(prefix) {
                break;
            }
            visit(key.value(), value.value())?;
        }
        Ok(())
    }
}

impl KvStore for RedbStore {
    type Snapshot = RedbSnapshot;

    fn snapshot(&self) -> Result<RedbSnapshot> {
        Ok(RedbSnapshot(self.db.begin_read().map_err(storage)?))
    }

    fn write_with(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        let mut txn = self.db.begin_write().map_err(storage)?;
        txn.set_durability(match durability {
            Durability::Immediate => redb::Durability::Immediate,
            Durability::Deferred => redb::Durability::None,
        })
        .map_err(storage)?;
        if batch.ops.is_empty() {
            return txn.commit().map_err(storage);
        }
        // Held through the commit: the next writer starts from this one's summary.
        let mut held = self.summary.lock().unwrap_or_else(|p| p.into_inner());
        let mut summary = *held;
        {
            let mut table = txn.open_table(KV).map_err(storage)?;
            let mut meta = txn.open_table(META).map_err(storage)?;
            for op in &batch.ops {
                match op {
                    Op::Put(key, value) => {
                        if let Some(old) = table
                            .insert(key.as_slice(), value.as_slice())
                            .map_err(storage)?
                        {
                            summary.remove(key, old.value());
                        }
                        summary.add(key, value);
                    }
                    Op::Delete(key) => {
                        if let Some(old) = table.remove(key.as_slice()).map_err(storage)? {
                            summary.remove(key, old.value());
                        }
                    }
                }
            }
            meta.insert(SUMMARY, summary.encode().as_slice())
                .map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        *held = summary;
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        // An empty durable commit makes every earlier non-durable commit durable.
        self.write_with(WriteBatch::default(), Durability::Immediate)
    }
}
