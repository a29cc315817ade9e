//! `Snapshot`: the index as of one generation (a tantivy searcher, the catalog and the chunk
//! vectors of that generation), immutable, so that queries read it without waiting.

use std::sync::Arc;

use tantivy::Searcher;
use tantivy::schema::Field;
use tantivy::tokenizer::TextAnalyzer;

use crate::catalog::Catalog;
use crate::index::{self, Fields};
use crate::vectors::VectorTable;

/// The index as of one generation, immutable.
pub struct Snapshot {
    pub(crate) catalog: Arc<Catalog>,
    /// Chunk embeddings of the same generation, when the index has them.
    pub(crate) vectors: Option<Arc<VectorTable>>,
    pub(crate) searcher: Searcher,
    pub(crate) fields: Fields,
    pub(crate) analyzer: TextAnalyzer,
}

impl Snapshot {
    /// The snapshot of `catalog`'s generation; `searcher` must read that generation's
    /// segments, and queries are analysed as the catalog's settings say.
    pub(crate) fn new(
        catalog: Arc<Catalog>,
        searcher: Searcher,
        fields: Fields,
        vectors: Option<Arc<VectorTable>>,
    ) -> Snapshot {
        let analyzer = index::analyzer(catalog.settings().stemming);
        Snapshot {
            catalog,
            vectors,
            searcher,
            fields,
            analyzer,
        }
    }

    pub(crate) fn searched_field(&self) -> Field {
        self.fields.searched(self.catalog.settings().stemming)
    }
}
