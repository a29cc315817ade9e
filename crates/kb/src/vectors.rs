//! Chunk embeddings: the table of one index generation and the nearest-neighbour search over it.
//!
//! Every chunk of every document has one row (`doc key`, `chunk index`, hash of the chunk text)
//! and one unit vector. The table is written whole, as `vectors-<generation>.bin`, before the
//! tantivy commit that names that generation (like the catalog), so a crash leaves the old
//! generation with its own vectors. An ingest embeds only chunks whose text is new: rows of
//! unchanged documents are carried over, and a changed document reuses the vector of any
//! chunk whose text it still has. A table made by another model (its fingerprint differs) is
//! not reused.
//!
//! The model itself is not this crate's business: the caller hands in an [`Embedder`].

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use mneme_vector::{Hit as VectorHit, Index as AnnIndex, IndexConfig, Vectors};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::files;

const MAGIC: &[u8; 8] = b"MNEMEVEC";
const FORMAT: u32 = 1;

/// Turns texts into vectors of length [`Embedder::dim`] (unit vectors: similarity is the dot
/// product). Implemented over the sentence-embedding model by the application layer.
pub trait Embedder: Send + Sync {
    fn dim(&self) -> usize;
    /// The model's name, as people call it (`all-MiniLM-L6-v2`).
    fn name(&self) -> String;
    /// Identifies the model and its settings: vectors stored by another fingerprint are
    /// computed again.
    fn fingerprint(&self) -> String;
    /// One vector per text, in order; `progress(n)` after each `n` texts (from any thread).
    fn embed(
        &self,
        texts: &[&str],
        progress: &(dyn Fn(usize) + Sync),
    ) -> std::result::Result<Vec<Vec<f32>>, String>;
}

/// One embedded chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Row {
    pub key: u64,
    pub chunk: u32,
    pub text_hash: u64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    generation: u64,
    fingerprint: String,
    rows: Vec<Row>,
    alive: Vec<bool>,
}

/// The vectors of one generation, searchable.
///
/// Rows are appended in ingest order and never move, so the HNSW graph of a large table grows
/// by insertion instead of being rebuilt; rows of removed or replaced documents are marked
/// dead and filtered out of searches until dead rows reach a quarter of the table, when the
/// table is rebuilt from its live rows.
#[derive(Clone)]
pub(crate) struct VectorTable {
    pub generation: u64,
    pub fingerprint: String,
    rows: Vec<Row>,
    alive: Vec<bool>,
    /// Live rows of each document, in chunk order.
    by_key: HashMap<u64, Vec<u32>>,
    index: AnnIndex,
}

impl std::fmt::Debug for VectorTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorTable")
            .field("generation", &self.generation)
            .field("fingerprint", &self.fingerprint)
            .field("rows", &self.rows.len())
            .finish()
    }
}

/// A chunk's vector score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ChunkScore {
    pub key: u64,
    pub chunk: u32,
    pub score: f32,
}

pub(crate) fn text_hash(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

fn vector_error(err: mneme_vector::Error) -> Error {
    Error::Embedding(format!("vector index: {err}"))
}

impl VectorTable {
    /// An empty table for vectors of length `dim`.
    pub fn empty(generation: u64, fingerprint: String, dim: usize) -> Result<VectorTable> {
        Ok(VectorTable {
            generation,
            fingerprint,
            rows: Vec::new(),
            alive: Vec::new(),
            by_key: HashMap::new(),
            index: AnnIndex::new(dim, IndexConfig::default()).map_err(vector_error)?,
        })
    }

    /// Live rows.
    pub fn len(&self) -> usize {
        self.by_key.values().map(Vec::len).sum()
    }

    pub fn dim(&self) -> usize {
        self.index.dim()
    }

    pub fn vector(&self, row: u32) -> &[f32] {
        self.index.vectors().get(row).unwrap_or(&[])
    }

    pub fn has_document(&self, key: u64) -> bool {
        self.by_key.contains_key(&key)
    }

    /// Live rows with their text hashes (for reuse by an ingest).
    pub fn live_rows(&self) -> impl Iterator<Item = (u32, &Row)> {
        self.rows
            .iter()
            .enumerate()
            .filter(|(i, _)| self.alive[*i])
            .map(|(i, row)| (i as u32, row))
    }

    /// Appends the vectors of one chunk.
    pub fn push(&mut self, row: Row, vector: &[f32]) -> Result<()> {
        let id = self.index.push(vector).map_err(vector_error)?;
        debug_assert_eq!(id as usize, self.rows.len());
        self.rows.push(row);
        self.alive.push(true);
        self.by_key.entry(row.key).or_default().push(id);
        Ok(())
    }

    /// Marks every row of document `key` dead.
    pub fn remove_document(&mut self, key: u64) {
        for id in self.by_key.remove(&key).unwrap_or_default() {
            self.alive[id as usize] = false;
        }
    }

    /// Rebuilds from the live rows when dead ones make up a quarter of the table.
    pub fn compact_if_sparse(&mut self) -> Result<()> {
        let live = self.len();
        let dead = self.rows.len() - live;
        if dead == 0 || dead * 4 < self.rows.len() {
            return Ok(());
        }
        let mut fresh = VectorTable::empty(self.generation, self.fingerprint.clone(), self.dim())?;
        let mut vectors = Vectors::with_capacity(self.dim(), live);
        let mut rows = Vec::with_capacity(live);
        for (id, row) in self.live_rows() {
            vectors.push(self.vector(id)).map_err(vector_error)?;
            rows.push(*row);
        }
        fresh.index =
            AnnIndex::from_vectors(vectors, IndexConfig::default()).map_err(vector_error)?;
        for (i, row) in rows.iter().enumerate() {
            fresh.by_key.entry(row.key).or_default().push(i as u32);
        }
        fresh.alive = vec![true; rows.len()];
        fresh.rows = rows;
        *self = fresh;
        Ok(())
    }

    /// The `k` live chunks nearest to `query`, best first (ties by row order).
    pub fn nearest(&self, query: &[f32], k: usize) -> Result<Vec<ChunkScore>> {
        let alive = |id: u32| self.alive.get(id as usize).copied().unwrap_or(false);
        let hits = self
            .index
            .search(query, k, Some(&alive))
            .map_err(vector_error)?;
        Ok(hits
            .into_iter()
            .map(|VectorHit { id, score }| {
                let row = self.rows[id as usize];
                ChunkScore {
                    key: row.key,
                    chunk: row.chunk,
                    score,
                }
            })
            .collect())
    }

    /// The best chunk of document `key` for `query` (exact).
    pub fn best_of_document(&self, key: u64, query: &[f32]) -> Option<ChunkScore> {
        self.by_key
            .get(&key)?
            .iter()
            .map(|&id| ChunkScore {
                key,
                chunk: self.rows[id as usize].chunk,
                score: mneme_vector::dot(self.vector(id), query),
            })
            .max_by(|a, b| a.score.total_cmp(&b.score).then(b.chunk.cmp(&a.chunk)))
    }

    /// Writes `vectors-<generation>.bin` durably (temp file, fsync, rename, fsync of `dir`).
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        let header = Header {
            generation: self.generation,
            fingerprint: self.fingerprint.clone(),
            rows: self.rows.clone(),
            alive: self.alive.clone(),
        };
        let head = postcard::to_allocvec(&header)
            .map_err(|err| Error::Corrupt(format!("cannot encode vectors: {err}")))?;
        let data = self.index.to_bytes();
        let mut bytes = Vec::with_capacity(head.len() + data.len() + 36);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT.to_le_bytes());
        bytes.extend_from_slice(&(head.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&head);
        bytes.extend_from_slice(&(data.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&data);
        let sum = xxhash_rust::xxh3::xxh3_64(&bytes[20..]);
        bytes.extend_from_slice(&sum.to_le_bytes());

        let path = vectors_path(dir, self.generation);
        files::write_durably(dir, &path, &bytes)?;
        Ok(path)
    }

    /// Reads the table of `generation`, if that generation has one.
    pub fn load(dir: &Path, generation: u64) -> Result<Option<VectorTable>> {
        let path = vectors_path(dir, generation);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(Error::io(format!("reading {}", path.display()), err)),
        };
        let corrupt = |what: &str| {
            Error::Corrupt(format!(
                "{} is damaged ({what}); run `mneme ingest --rebuild`",
                path.display()
            ))
        };
        if bytes.len() < 36 || &bytes[..8] != MAGIC {
            return Err(corrupt("bad header"));
        }
        let format = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if format != FORMAT {
            return Err(corrupt(&format!(
                "format {format}, this mneme reads {FORMAT}"
            )));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if xxhash_rust::xxh3::xxh3_64(&body[20..]).to_le_bytes() != sum {
            return Err(corrupt("checksum mismatch"));
        }
        let head_len = u64::from_le_bytes(body[12..20].try_into().unwrap()) as usize;
        let head = body
            .get(20..20usize.saturating_add(head_len))
            .ok_or_else(|| corrupt("truncated"))?;
        let header: Header = postcard::from_bytes(head).map_err(|_| corrupt("undecodable"))?;
        let rest = &body[20 + head_len..];
        let data_len = rest
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
            .ok_or_else(|| corrupt("truncated"))?;
        let data = rest
            .get(8..8usize.saturating_add(data_len))
            .ok_or_else(|| corrupt("truncated"))?;
        let index = AnnIndex::from_bytes(data).map_err(|err| corrupt(&err.to_string()))?;
        if index.len() != header.rows.len()
            || header.alive.len() != header.rows.len()
            || header.generation != generation
        {
            return Err(corrupt("row count or generation mismatch"));
        }
        let mut by_key: HashMap<u64, Vec<u32>> = HashMap::new();
        for (i, row) in header.rows.iter().enumerate() {
            if header.alive[i] {
                by_key.entry(row.key).or_default().push(i as u32);
            }
        }
        Ok(Some(VectorTable {
            generation: header.generation,
            fingerprint: header.fingerprint,
            rows: header.rows,
            alive: header.alive,
            by_key,
            index,
        }))
    }
}

pub(crate) fn vectors_path(dir: &Path, generation: u64) -> PathBuf {
    files::generation_file(dir, files::VECTORS, generation)
}
