//! The tantivy side of the engine: one tantivy document per chunk, with its text indexed for
//! BM25 and its position stored. The commit payload names the catalog generation that belongs
//! to the commit, which is how a reader finds a consistent pair after any crash.

use std::path::Path;

use tantivy::directory::MmapDirectory;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::error::{Error, Result};

/// Version of the tantivy layout and commit payload.
pub(crate) const INDEX_FORMAT: u32 = 1;
const PLAIN_TOKENIZER: &str = "mneme_plain";
const STEM_TOKENIZER: &str = "mneme_en_stem";

/// Field handles of the chunk schema.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    pub doc_key: Field,
    pub chunk_idx: Field,
    pub start: Field,
    pub end: Field,
    pub body: Field,
    pub heading: Field,
    pub text: Field,
    pub text_stem: Field,
}

impl Fields {
    /// The indexed field that a snapshot with these settings searches.
    pub fn searched(&self, stemming: bool) -> Field {
        if stemming { self.text_stem } else { self.text }
    }
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let indexed = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
    };
    let fields = Fields {
        doc_key: builder.add_u64_field("doc_key", INDEXED | FAST | STORED),
        chunk_idx: builder.add_u64_field("chunk_idx", INDEXED | STORED),
        start: builder.add_u64_field("start", STORED),
        end: builder.add_u64_field("end", STORED),
        body: builder.add_text_field("body", STORED),
        heading: builder.add_text_field("heading", STORED),
        text: builder.add_text_field("text", indexed(PLAIN_TOKENIZER)),
        text_stem: builder.add_text_field("text_stem", indexed(STEM_TOKENIZER)),
    };
    (builder.build(), fields)
}

/// The analyzer of the searched field: words of letters and digits, lowercased, optionally
/// reduced to their English stem.
pub(crate) fn analyzer(stemming: bool) -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser);
    if stemming {
        builder.filter(Stemmer::new(Language::English)).build()
    } else {
        builder.build()
    }
}

/// Opens (or creates) the chunk index in `dir`.
/// Bytes per compressed block of the document store.
const DOCSTORE_BLOCK_SIZE: usize = 4096;

pub(crate) fn open(dir: &Path) -> Result<(Index, IndexReader, Fields)> {
    std::fs::create_dir_all(dir)
        .map_err(|err| Error::io(format!("creating {}", dir.display()), err))?;
    let (schema, fields) = schema();
    let directory = MmapDirectory::open(dir).map_err(|err| {
        Error::Corrupt(format!(
            "cannot open the index directory {}: {err}",
            dir.display()
        ))
    })?;
    // Chunks are ~1 KB: a 4 KB store block keeps the bytes decompressed per fetched hit small
    // (tantivy's default is 16 KB). Only new indexes take the setting.
    let settings = tantivy::IndexSettings {
        docstore_blocksize: DOCSTORE_BLOCK_SIZE,
        ..tantivy::IndexSettings::default()
    };
    let index = Index::builder()
        .schema(schema)
        .settings(settings)
        .open_or_create(directory)
        .map_err(|err| {
            Error::Corrupt(format!(
                "{} does not hold a mneme index this version can read ({err}); \
             move it away and ingest again",
                dir.display()
            ))
        })?;
    // Every file of the committed segments against the checksum in its footer: a damaged
    // file would otherwise give wrong counts or fail queries later.
    let mut damaged: Vec<String> = index
        .validate_checksum()
        .map_err(|err| {
            Error::Corrupt(format!("cannot read the index in {}: {err}", dir.display()))
        })?
        .into_iter()
        .map(|path| path.display().to_string())
        .collect();
    if !damaged.is_empty() {
        damaged.sort();
        return Err(Error::Corrupt(format!(
            "the index in {} is damaged: {} fail their checksums; run `mneme ingest --rebuild` \
             (it moves the damaged index aside)",
            dir.display(),
            damaged.join(", ")
        )));
    }
    index
        .tokenizers()
        .register(PLAIN_TOKENIZER, analyzer(false));
    index.tokenizers().register(STEM_TOKENIZER, analyzer(true));
    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    Ok((index, reader, fields))
}

/// The commit payload: `mneme-kb/<format> generation=<n>`.
pub(crate) fn payload(generation: u64) -> String {
    format!("mneme-kb/{INDEX_FORMAT} generation={generation}")
}

/// The catalog generation named by the last commit (0 for an index never committed by mneme).
pub(crate) fn committed_generation(index: &Index) -> Result<u64> {
    let metas = index.load_metas()?;
    let Some(payload) = metas.payload else {
        return Ok(0);
    };
    let parse = || -> Option<(u32, u64)> {
        let rest = payload.strip_prefix("mneme-kb/")?;
        let (format, generation) = rest.split_once(" generation=")?;
        Some((format.parse().ok()?, generation.parse().ok()?))
    };
    match parse() {
        Some((INDEX_FORMAT, generation)) => Ok(generation),
        Some((format, _)) => Err(Error::Corrupt(format!(
            "the index has format {format}, this mneme reads format {INDEX_FORMAT}; \
             move it away and ingest again"
        ))),
        None => Err(Error::Corrupt(format!(
            "unrecognised index commit payload {payload:?}"
        ))),
    }
}
