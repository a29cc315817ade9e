//! The embedded backend on redb: one file, copy-on-write B-trees, checksummed double commit
//! slots (a crash leaves the last fully committed transaction), MVCC read transactions.

use std::path::Path;

use redb::{Database, ReadableDatabase, TableDefinition};

use crate::{Durability, Error, KvSnapshot, KvStore, Op, Result, Visitor, WriteBatch};

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

pub struct RedbStore {
    db: Database,
    path: String,
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
        let db = Database::create(path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Busy(shown.clone()),
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(what)) => {
                Error::Corrupt(format!("{shown}: {what}"))
            }
            other => Error::Io(format!("{shown}: {other}")),
        })?;
        let txn = db.begin_write().map_err(storage)?;
        txn.open_table(KV).map_err(storage)?;
        txn.commit().map_err(storage)?;
        Ok(RedbStore { db, path: shown })
    }
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
        {
            let mut table = txn.open_table(KV).map_err(storage)?;
            for op in &batch.ops {
                match op {
                    Op::Put(key, value) => {
                        table
                            .insert(key.as_slice(), value.as_slice())
                            .map_err(storage)?;
                    }
                    Op::Delete(key) => {
                        table.remove(key.as_slice()).map_err(storage)?;
                    }
                }
            }
        }
        txn.commit().map_err(storage)
    }

    fn flush(&self) -> Result<()> {
        // An empty durable commit makes every earlier non-durable commit durable.
        self.write_with(WriteBatch::default(), Durability::Immediate)
    }
}
