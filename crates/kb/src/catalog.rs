//! The document table of one index generation, with KnowledgeBeast's word index.
//!
//! The catalog lists every document (its id, file, content hash and chunk count) and holds the
//! `term -> documents` postings of the `terms` ranking mode (raw `lower().split()` terms, which
//! tantivy's tokenizer cannot produce). It is written whole, as `catalog-<generation>.bin`,
//! before the tantivy commit that names that generation, so both always agree.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chunk::ChunkConfig;
use crate::convert::Format;
use crate::error::{Error, Result};
use crate::files;

const MAGIC: &[u8; 8] = b"MNEMECAT";
/// Bumped whenever the serialized layout changes; older layouts are read by `load`.
pub(crate) const CATALOG_FORMAT: u32 = 1;

/// Settings that shape the index: when they change, every document is ingested again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSettings {
    pub chunk: ChunkConfig,
    pub stemming: bool,
    /// Bumped when a converter changes its output, so that documents are converted again.
    pub converter_version: u32,
}

/// One ingested document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocEntry {
    /// KnowledgeBeast's id: the path relative to the parent of the knowledge directory.
    pub doc_id: String,
    /// Stable 64-bit key of `doc_id`, stored with every chunk in the tantivy index.
    pub key: u64,
    pub path: String,
    pub kb_dir: String,
    pub name: String,
    pub title: String,
    pub format: Format,
    pub size: u64,
    pub mtime_ns: u64,
    pub hash: [u8; 16],
    pub n_chunks: u32,
    pub n_chars: u64,
}

/// A dense document number inside one catalog (an index into its table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct DocOrd(pub u32);

#[derive(Clone, Debug)]
pub struct Catalog {
    pub(crate) generation: u64,
    pub(crate) settings: IndexSettings,
    docs: Vec<Option<DocEntry>>,
    by_id: HashMap<String, DocOrd>,
    by_key: HashMap<u64, DocOrd>,
    terms: HashMap<Box<str>, Vec<u32>>,
    live: usize,
    chunks: u64,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    generation: u64,
    settings: IndexSettings,
    docs: Vec<Option<DocEntry>>,
    /// Terms with their postings as ascending, delta-encoded document numbers.
    terms: Vec<(String, Vec<u32>)>,
}

impl Catalog {
    pub(crate) fn empty(settings: IndexSettings) -> Catalog {
        Catalog {
            generation: 0,
            settings,
            docs: Vec::new(),
            by_id: HashMap::new(),
            by_key: HashMap::new(),
            terms: HashMap::new(),
            live: 0,
            chunks: 0,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn settings(&self) -> IndexSettings {
        self.settings
    }

    pub fn document_count(&self) -> usize {
        self.live
    }

    pub fn chunk_count(&self) -> u64 {
        self.chunks
    }

    pub fn term_count(&self) -> usize {
        self.terms.len()
    }

    pub fn documents(&self) -> impl Iterator<Item = &DocEntry> {
        self.docs.iter().flatten()
    }

    pub fn get(&self, doc_id: &str) -> Option<&DocEntry> {
        self.by_id.get(doc_id).and_then(|&ord| self.entry(ord))
    }

    pub(crate) fn ord_of_key(&self, key: u64) -> Option<DocOrd> {
        self.by_key.get(&key).copied()
    }

    pub(crate) fn entry(&self, ord: DocOrd) -> Option<&DocEntry> {
        self.docs.get(ord.0 as usize).and_then(Option::as_ref)
    }

    /// KnowledgeBeast's keyword score: for each live document, the number of distinct
    /// `query_terms` in its term set. Documents scoring zero are left out.
    pub(crate) fn term_match_counts(&self, query_terms: &[String]) -> Vec<(DocOrd, u32)> {
        let mut counts = vec![0u32; self.docs.len()];
        for term in query_terms {
            if let Some(postings) = self.terms.get(term.as_str()) {
                for &doc in postings {
                    counts[doc as usize] += 1;
                }
            }
        }
        counts
            .iter()
            .enumerate()
            .filter(|&(ord, &count)| count > 0 && self.docs[ord].is_some())
            .map(|(ord, &count)| (DocOrd(ord as u32), count))
            .collect()
    }

    /// Removes a document (its postings stay as tombstones until the next compaction).
    pub(crate) fn remove(&mut self, doc_id: &str) -> Option<DocEntry> {
        let ord = self.by_id.remove(doc_id)?;
        let entry = self.docs[ord.0 as usize].take()?;
        self.by_key.remove(&entry.key);
        self.live -= 1;
        self.chunks -= u64::from(entry.n_chunks);
        Some(entry)
    }

    /// Adds a document with its distinct terms. Its id and key must not be present.
    pub(crate) fn insert(&mut self, entry: DocEntry, terms: &[String]) {
        debug_assert!(!self.by_id.contains_key(&entry.doc_id));
        let ord = self.docs.len() as u32;
        for term in terms {
            match self.terms.get_mut(term.as_str()) {
                Some(postings) => postings.push(ord),
                None => {
                    self.terms.insert(term.as_str().into(), vec![ord]);
                }
            }
        }
        self.by_id.insert(entry.doc_id.clone(), DocOrd(ord));
        self.by_key.insert(entry.key, DocOrd(ord));
        self.live += 1;
        self.chunks += u64::from(entry.n_chunks);
        self.docs.push(Some(entry));
    }

    /// Records a new size and modification time for a document whose content did not change.
    pub(crate) fn update_file_meta(&mut self, doc_id: &str, size: u64, mtime_ns: u64) {
        let ord = self.by_id.get(doc_id).map(|ord| ord.0 as usize);
        if let Some(entry) = ord.and_then(|ord| self.docs[ord].as_mut()) {
            entry.size = size;
            entry.mtime_ns = mtime_ns;
        }
    }

    /// Renumbers documents densely when removed ones make up a quarter of the table.
    pub(crate) fn compact_if_sparse(&mut self) {
        let dead = self.docs.len() - self.live;
        if dead < 64 || dead * 4 < self.docs.len() {
            return;
        }
        let mut remap = vec![u32::MAX; self.docs.len()];
        let mut docs = Vec::with_capacity(self.live);
        for (old, slot) in self.docs.drain(..).enumerate() {
            if let Some(entry) = slot {
                remap[old] = docs.len() as u32;
                docs.push(Some(entry));
            }
        }
        self.docs = docs;
        self.terms.retain(|_, postings| {
            postings.retain_mut(|doc| {
                *doc = remap[*doc as usize];
                *doc != u32::MAX
            });
            !postings.is_empty()
        });
        self.reindex_lookups();
    }

    fn reindex_lookups(&mut self) {
        self.by_id.clear();
        self.by_key.clear();
        self.live = 0;
        self.chunks = 0;
        for (ord, entry) in self.docs.iter().enumerate() {
            if let Some(entry) = entry {
                self.by_id.insert(entry.doc_id.clone(), DocOrd(ord as u32));
                self.by_key.insert(entry.key, DocOrd(ord as u32));
                self.live += 1;
                self.chunks += u64::from(entry.n_chunks);
            }
        }
    }

    /// Writes `catalog-<generation>.bin` in `dir` durably (temp file, fsync, rename, fsync of
    /// the directory).
    pub(crate) fn save(&self, dir: &Path) -> Result<PathBuf> {
        let mut terms: Vec<(String, Vec<u32>)> = self
            .terms
            .iter()
            .map(|(term, postings)| {
                let mut prev = 0;
                let deltas = postings
                    .iter()
                    .map(|&doc| {
                        let delta = doc - prev;
                        prev = doc;
                        delta
                    })
                    .collect();
                (term.to_string(), deltas)
            })
            .collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let stored = Stored {
            generation: self.generation,
            settings: self.settings,
            docs: self.docs.clone(),
            terms,
        };
        let body = postcard::to_allocvec(&stored)
            .map_err(|err| Error::Corrupt(format!("cannot encode catalog: {err}")))?;
        let mut bytes = Vec::with_capacity(body.len() + 28);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&CATALOG_FORMAT.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&body).to_le_bytes());

        let path = catalog_path(dir, self.generation);
        files::write_durably(dir, &path, &bytes)?;
        Ok(path)
    }

    /// Reads the catalog of `generation` from `dir`, checking its magic, format and checksum.
    pub(crate) fn load(dir: &Path, generation: u64) -> Result<Catalog> {
        let path = catalog_path(dir, generation);
        let bytes = fs::read(&path).map_err(|err| {
            Error::Corrupt(format!(
                "the index names generation {generation} but {} cannot be read ({err}); \
                 run `mneme ingest --rebuild`",
                path.display()
            ))
        })?;
        let corrupt = |what: &str| {
            Error::Corrupt(format!(
                "{} is damaged ({what}); run `mneme ingest --rebuild`",
                path.display()
            ))
        };
        if bytes.len() < 28 || &bytes[..8] != MAGIC {
            return Err(corrupt("bad header"));
        }
        let format = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
        if format != CATALOG_FORMAT {
            return Err(Error::Corrupt(format!(
                "{} has format {format}, this mneme reads format {CATALOG_FORMAT}; \
                 run `mneme ingest --rebuild`",
                path.display()
            )));
        }
        let len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
        let body = bytes
            .get(20..20 + len)
            .ok_or_else(|| corrupt("truncated"))?;
        let sum = bytes
            .get(20 + len..28 + len)
            .ok_or_else(|| corrupt("truncated"))?;
        if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != sum {
            return Err(corrupt("checksum mismatch"));
        }
        let stored: Stored = postcard::from_bytes(body).map_err(|_| corrupt("undecodable"))?;
        let mut catalog = Catalog::empty(stored.settings);
        catalog.generation = stored.generation;
        catalog.docs = stored.docs;
        catalog.terms = stored
            .terms
            .into_iter()
            .map(|(term, mut postings)| {
                let mut acc = 0;
                for doc in &mut postings {
                    acc += *doc;
                    *doc = acc;
                }
                (term.into_boxed_str(), postings)
            })
            .collect();
        catalog.reindex_lookups();
        Ok(catalog)
    }
}

pub(crate) fn catalog_path(dir: &Path, generation: u64) -> PathBuf {
    files::generation_file(dir, files::CATALOG, generation)
}
