//! Either backend behind one type, for callers that choose at run time (the embedded file,
//! or memory for tests and ephemeral nodes).

use crate::memory::MemorySnapshot;
use crate::redb_store::RedbSnapshot;
use crate::{Durability, KvSnapshot, KvStore, MemoryStore, RedbStore, Result, Visitor, WriteBatch};

#[derive(Debug)]
pub enum AnyStore {
    Memory(MemoryStore),
    Redb(RedbStore),
}

pub enum AnySnapshot {
    Memory(MemorySnapshot),
    Redb(RedbSnapshot),
}

impl KvSnapshot for AnySnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            AnySnapshot::Memory(s) => s.get(key),
            AnySnapshot::Redb(s) => s.get(key),
        }
    }

    fn for_each_prefix(&self, prefix: &[u8], visit: &mut Visitor<'_>) -> Result<()> {
        match self {
            AnySnapshot::Memory(s) => s.for_each_prefix(prefix, visit),
            AnySnapshot::Redb(s) => s.for_each_prefix(prefix, visit),
        }
    }
}

impl KvStore for AnyStore {
    type Snapshot = AnySnapshot;

    fn snapshot(&self) -> Result<AnySnapshot> {
        Ok(match self {
            AnyStore::Memory(s) => AnySnapshot::Memory(s.snapshot()?),
            AnyStore::Redb(s) => AnySnapshot::Redb(s.snapshot()?),
        })
    }

    fn write_with(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        match self {
            AnyStore::Memory(s) => s.write_with(batch, durability),
            AnyStore::Redb(s) => s.write_with(batch, durability),
        }
    }

    fn flush(&self) -> Result<()> {
        match self {
            AnyStore::Memory(s) => s.flush(),
            AnyStore::Redb(s) => s.flush(),
        }
    }
}
