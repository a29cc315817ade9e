use crate::codec::{Reader, Writer};
use crate::{Error, Filter, Hit, Hnsw, HnswParams, Vectors, exact};

const MAGIC: &[u8; 4] = b"MNIX";
const VERSION: u32 = 1;

/// When to switch from exact search to HNSW, and the graph's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexConfig {
    /// Collections with at least this many vectors are searched through HNSW; smaller ones
    /// exactly. Default 20,000, where an exact query costs ~2 ms and HNSW ~0.3 ms.
    pub exact_threshold: usize,
    pub hnsw: HnswParams,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            exact_threshold: 20_000,
            hnsw: HnswParams::default(),
        }
    }
}

/// A vector collection with the search strategy picked by size: exact below
/// [`IndexConfig::exact_threshold`], HNSW from there on. The graph is built when the
/// collection reaches the threshold and then grows with every push; because insertion is
/// sequential and deterministic, the graph is the same as one built at once over the same
/// vectors.
///
/// Serialised form: `"MNIX" | version | threshold u64 | m u32 | ef_construction u32 |
/// ef_search u32 | seed u64 | vectors blob length u64 | vectors blob | graph blob length u64
/// (0: no graph) | graph blob | xxh3-64`; the inner blobs are those of [`Vectors::to_bytes`]
/// and [`Hnsw::to_bytes`].
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    config: IndexConfig,
    vectors: Vectors,
    hnsw: Option<Hnsw>,
}

impl Index {
    /// An empty index for vectors of dimension `dim`.
    pub fn new(dim: usize, config: IndexConfig) -> Result<Self, Error> {
        Index::from_vectors(Vectors::from_flat(dim, Vec::new())?, config)
    }

    /// An index over existing vectors (building the graph if there are enough of them).
    pub fn from_vectors(vectors: Vectors, config: IndexConfig) -> Result<Self, Error> {
        config.hnsw.validate()?;
        let hnsw = if vectors.len() >= config.exact_threshold.max(1) {
            Some(Hnsw::build(&vectors, config.hnsw)?)
        } else {
            None
        };
        Ok(Index {
            config,
            vectors,
            hnsw,
        })
    }

    /// Appends a vector, returns its id.
    pub fn push(&mut self, v: &[f32]) -> Result<u32, Error> {
        let id = self.vectors.push(v)?;
        match &mut self.hnsw {
            Some(g) => g.insert(&self.vectors, id)?,
            None if self.vectors.len() >= self.config.exact_threshold.max(1) => {
                self.hnsw = Some(Hnsw::build(&self.vectors, self.config.hnsw)?);
            }
            None => {}
        }
        Ok(id)
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.vectors.dim()
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    pub fn vectors(&self) -> &Vectors {
        &self.vectors
    }

    /// The graph, when the collection is above the threshold.
    pub fn hnsw(&self) -> Option<&Hnsw> {
        self.hnsw.as_ref()
    }

    /// The `k` best hits for `query` among the ids the filter keeps, with the configured
    /// `ef_search`.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<Vec<Hit>, Error> {
        self.search_ef(query, k, self.config.hnsw.ef_search, filter)
    }

    /// Like [`Index::search`] with an explicit HNSW beam width (ignored by exact search).
    pub fn search_ef(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<Vec<Hit>, Error> {
        match &self.hnsw {
            Some(g) => g.search_filtered(&self.vectors, query, k, ef, filter),
            None => exact::search(&self.vectors, query, k, filter),
        }
    }

    /// Exact search regardless of size.
    pub fn search_exact(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<Vec<Hit>, Error> {
        exact::search(&self.vectors, query, k, filter)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let vb = self.vectors.to_bytes();
        let gb = self.hnsw.as_ref().map(Hnsw::to_bytes).unwrap_or_default();
        let mut w = Writer::new(MAGIC, VERSION, 48 + vb.len() + gb.len());
        w.u64(self.config.exact_threshold as u64);
        w.u32(self.config.hnsw.m as u32);
        w.u32(self.config.hnsw.ef_construction as u32);
        w.u32(self.config.hnsw.ef_search as u32);
        w.u64(self.config.hnsw.seed);
        w.u64(vb.len() as u64);
        w.bytes(&vb);
        w.u64(gb.len() as u64);
        w.bytes(&gb);
        w.finish()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::open(bytes, MAGIC, VERSION)?;
        let threshold =
            usize::try_from(r.u64("threshold")?).map_err(|_| Error::Corrupt("threshold"))?;
        let hnsw = HnswParams {
            m: r.u32("m")? as usize,
            ef_construction: r.u32("ef_construction")? as usize,
            ef_search: r.u32("ef_search")? as usize,
            seed: r.u64("seed")?,
        };
        hnsw.validate()
            .map_err(|_| Error::Corrupt("parameters out of range"))?;
        let config = IndexConfig {
            exact_threshold: threshold,
            hnsw,
        };
        let vlen =
            usize::try_from(r.u64("vectors length")?).map_err(|_| Error::Corrupt("length"))?;
        let vectors = Vectors::from_bytes(r.take(vlen, "vectors")?)?;
        let glen = usize::try_from(r.u64("graph length")?).map_err(|_| Error::Corrupt("length"))?;
        let graph = r.take(glen, "graph")?;
        r.finish()?;
        let want_graph = vectors.len() >= threshold.max(1);
        let hnsw = if glen == 0 {
            None
        } else {
            let mut g = Hnsw::from_bytes(graph)?;
            if g.dim() != vectors.dim() || g.len() != vectors.len() {
                return Err(Error::Corrupt("graph does not cover the vectors"));
            }
            let p = *g.params();
            if (p.m, p.ef_construction, p.seed) != (hnsw.m, hnsw.ef_construction, hnsw.seed) {
                return Err(Error::Corrupt("graph parameters differ from the index's"));
            }
            g.set_ef_search(hnsw.ef_search)?;
            Some(g)
        };
        if hnsw.is_some() != want_graph {
            return Err(Error::Corrupt(
                "graph presence does not match the threshold",
            ));
        }
        Ok(Index {
            config,
            vectors,
            hnsw,
        })
    }
}
