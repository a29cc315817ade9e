//! The in-memory backend: a copy-on-write `BTreeMap` (snapshots are `Arc` clones).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::{Durability, KvSnapshot, KvStore, Op, Result, Visitor, WriteBatch};

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// A store that lives as long as the process; writes copy the map only when a snapshot still
/// holds the previous version.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<Arc<Map>>,
}

#[derive(Debug)]
pub struct MemorySnapshot(Arc<Map>);

impl KvSnapshot for MemorySnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(key).cloned())
    }

    fn for_each_prefix(&self, prefix: &[u8], visit: &mut Visitor<'_>) -> Result<()> {
        for (key, value) in self
            .0
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
        {
            visit(key, value)?;
        }
        Ok(())
    }
}

impl KvStore for MemoryStore {
    type Snapshot = MemorySnapshot;

    fn snapshot(&self) -> Result<MemorySnapshot> {
        Ok(MemorySnapshot(
            self.map.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        ))
    }

    fn write_with(&self, batch: WriteBatch, _durability: Durability) -> Result<()> {
        let mut current = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let map = Arc::make_mut(&mut current);
        for op in batch.ops {
            match op {
                Op::Put(key, value) => {
                    map.insert(key, value);
                }
                Op::Delete(key) => {
                    map.remove(&key);
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}
