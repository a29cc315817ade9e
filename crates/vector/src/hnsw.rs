//! A hierarchical navigable small-world graph (HNSW; Malkov & Yashunin, "Efficient and robust
//! approximate nearest neighbor search using Hierarchical Navigable Small World graphs",
//! 2016/2018), specialised to dot-product similarity over a [`Vectors`] store.
//!
//! # Why our own implementation
//!
//! The algorithm is about 300 lines and the crates that implement it (`hnsw_rs`,
//! `instant-distance`, ...) each miss something we need: bit-for-bit determinism (they insert
//! in parallel or draw levels from a thread RNG), a graph that borrows the caller's flat
//! vector store instead of copying it, validated (non-panicking) deserialisation, or freedom
//! from `unsafe` and large dependency trees. Owning the code also lets the filter predicate
//! act inside the traversal rather than after it.
//!
//! # Algorithm
//!
//! Every node `i` gets a level `L(i) ≥ 0` with `P(L ≥ l) = M^-l`, drawn from a hash of
//! `(seed, i)` (splitmix64), so the level of a node depends only on the seed and its id.
//! Layer `l` is a proximity graph over the nodes with `L ≥ l`; each node keeps at most `M`
//! links on the upper layers and `2M` on layer 0. A search descends greedily from the entry
//! point (a node of the top level) through the upper layers and then runs a best-first
//! beam search of width `ef` on layer 0. Insertion searches the same way with width
//! `ef_construction` on each of the new node's layers, links it to `M` neighbours chosen by
//! the diversity heuristic (a candidate is kept only if it is closer to the new node than to
//! every neighbour kept so far, which preserves links between clusters), and adds the
//! reverse links, re-running the heuristic on a neighbour whose list overflows.
//!
//! # Invariants
//!
//! - The graph covers ids `0..len()` of its store; [`Hnsw::insert`] only accepts the next id,
//!   and insertion is sequential, so the same vectors and parameters always give the same
//!   graph, and building at once equals inserting one by one.
//! - A link `a → b` on layer `l` implies `L(a) ≥ l` and `L(b) ≥ l`, `a ≠ b`, and the list
//!   length is at most the layer's degree bound. [`Hnsw::from_bytes`] checks all of these,
//!   so traversal never indexes out of bounds, even on a hostile blob.
//! - There is no deletion: callers hide ids with a filter or rebuild.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::codec::{Reader, Writer};
use crate::exact::{self, dot};
use crate::hit::{Ranked, sort_hits};
use crate::vectors::MAX_DIM;
use crate::{Error, Filter, Hit, Vectors};

const MAGIC: &[u8; 4] = b"MNHW";
const VERSION: u32 = 1;
/// Levels are capped; with `M = 16` level 16 has probability 16^-16.
const MAX_LEVEL: u8 = 16;
/// With a filter, the beam is at least `FILTER_OVERFETCH · k` wide.
pub const FILTER_OVERFETCH: usize = 4;

/// Construction and search parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    /// Links per node on the upper layers (`2M` on layer 0). 2..=100; default 16.
    pub m: usize,
    /// Beam width while inserting. Default 200.
    pub ef_construction: usize,
    /// Default beam width of a search (raised to `k` when smaller). Default 128.
    pub ef_search: usize,
    /// Seed of the level assignment.
    pub seed: u64,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 128,
            seed: 0x6d6e_656d_6500_0001,
        }
    }
}

impl HnswParams {
    pub fn validate(&self) -> Result<(), Error> {
        if !(2..=100).contains(&self.m) {
            return Err(Error::InvalidParams("m must be in 2..=100"));
        }
        if !(1..=1 << 16).contains(&self.ef_construction) {
            return Err(Error::InvalidParams("ef_construction must be in 1..=65536"));
        }
        if !(1..=1 << 16).contains(&self.ef_search) {
            return Err(Error::InvalidParams("ef_search must be in 1..=65536"));
        }
        Ok(())
    }

    fn m0(&self) -> usize {
        2 * self.m
    }
}

/// splitmix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The level of node `id`: `floor(-ln(U) / ln(M))`, `U` uniform in (0, 1] from `(seed, id)`.
fn level_for(seed: u64, m: usize, id: u32) -> u8 {
    let h = mix(seed ^ mix(u64::from(id)));
    let u = ((h >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let l = (-u.ln() / (m as f64).ln()).floor();
    if l >= f64::from(MAX_LEVEL) {
        MAX_LEVEL
    } else {
        l as u8
    }
}

/// A set of visited ids, as a bitset over `0..n`.
struct Visited(Vec<u64>);

impl Visited {
    fn new(n: usize) -> Self {
        Visited(vec![0; n.div_ceil(64)])
    }
    /// Marks `id`; true if it was not marked before.
    #[inline]
    fn insert(&mut self, id: u32) -> bool {
        let (w, b) = ((id >> 6) as usize, 1u64 << (id & 63));
        let fresh = self.0[w] & b == 0;
        self.0[w] |= b;
        fresh
    }
}

/// An HNSW graph over the first `len()` vectors of a [`Vectors`] store. The graph does not
/// own the vectors: every call takes the store, which must be the one the graph was built
/// from (or a store extended from it by appending).
#[derive(Debug, Clone, PartialEq)]
pub struct Hnsw {
    params: HnswParams,
    dim: usize,
    levels: Vec<u8>,
    /// Layer-0 links, stride `2M + 1`: `[count, id, id, ...]`.
    l0: Vec<u32>,
    /// Upper-layer links of each node, empty for level-0 nodes; layer `l ≥ 1` lives at
    /// `(l-1)·(M+1)`, laid out like `l0`.
    upper: Vec<Vec<u32>>,
    entry: Option<u32>,
    max_level: u8,
}

impl Hnsw {
    /// An empty graph for vectors of dimension `dim`.
    pub fn new(dim: usize, params: HnswParams) -> Result<Self, Error> {
        params.validate()?;
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::InvalidDimension(dim));
        }
        Ok(Hnsw {
            params,
            dim,
            levels: Vec::new(),
            l0: Vec::new(),
            upper: Vec::new(),
            entry: None,
            max_level: 0,
        })
    }

    /// Builds the graph over all vectors of the store, inserting them in id order.
    pub fn build(vectors: &Vectors, params: HnswParams) -> Result<Self, Error> {
        let mut g = Hnsw::new(vectors.dim(), params)?;
        g.levels.reserve(vectors.len());
        g.l0.reserve(vectors.len() * (params.m0() + 1));
        g.upper.reserve(vectors.len());
        for id in 0..vectors.len() as u32 {
            g.insert(vectors, id)?;
        }
        Ok(g)
    }

    /// Number of nodes (the graph covers ids `0..len()`).
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn params(&self) -> &HnswParams {
        &self.params
    }

    /// Sets the default beam width of [`Hnsw::search`] callers that use `params().ef_search`.
    pub fn set_ef_search(&mut self, ef: usize) -> Result<(), Error> {
        let p = HnswParams {
            ef_search: ef,
            ..self.params
        };
        p.validate()?;
        self.params = p;
        Ok(())
    }

    fn check_store(&self, vectors: &Vectors) -> Result<(), Error> {
        if vectors.dim() != self.dim {
            return Err(Error::GraphMismatch("dimension"));
        }
        if vectors.len() < self.len() {
            return Err(Error::GraphMismatch(
                "store has fewer vectors than the graph",
            ));
        }
        Ok(())
    }

    #[inline]
    fn links(&self, node: u32, layer: u8) -> &[u32] {
        let s = if layer == 0 {
            let stride = self.params.m0() + 1;
            &self.l0[node as usize * stride..(node as usize + 1) * stride]
        } else {
            let stride = self.params.m + 1;
            let off = (layer as usize - 1) * stride;
            &self.upper[node as usize][off..off + stride]
        };
        &s[1..1 + s[0] as usize]
    }

    fn set_links(&mut self, node: u32, layer: u8, ids: &[u32]) {
        let s = if layer == 0 {
            let stride = self.params.m0() + 1;
            &mut self.l0[node as usize * stride..(node as usize + 1) * stride]
        } else {
            let stride = self.params.m + 1;
            let off = (layer as usize - 1) * stride;
            &mut self.upper[node as usize][off..off + stride]
        };
        s[0] = ids.len() as u32;
        s[1..1 + ids.len()].copy_from_slice(ids);
        // Clear stale slots, so that equal graphs compare (and serialise) equal.
        s[1 + ids.len()..].fill(0);
    }

    /// Greedy descent on one layer: moves to the best neighbour until none is better.
    fn greedy(&self, vectors: &Vectors, q: &[f32], mut cur: Hit, layer: u8) -> Hit {
        loop {
            let mut moved = false;
            for &nb in self.links(cur.id, layer) {
                let h = Hit {
                    id: nb,
                    score: dot(q, vectors.row(nb)),
                };
                if Ranked(h) > Ranked(cur) {
                    cur = h;
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Descends from the entry point to layer `down_to`, returning the closest node found.
    fn descend(&self, vectors: &Vectors, q: &[f32], entry: u32, down_to: u8) -> Hit {
        let mut cur = Hit {
            id: entry,
            score: dot(q, vectors.row(entry)),
        };
        let mut layer = self.max_level;
        while layer > down_to {
            cur = self.greedy(vectors, q, cur, layer);
            layer -= 1;
        }
        cur
    }

    /// Beam search of width `ef` on one layer. Only nodes the filter keeps enter the result
    /// set, but all nodes are traversed. Returns the results best first, or `None` when more
    /// than `budget` nodes were visited.
    #[allow(clippy::too_many_arguments)]
    fn search_layer(
        &self,
        vectors: &Vectors,
        q: &[f32],
        entry_points: &[Hit],
        ef: usize,
        layer: u8,
        filter: Option<Filter<'_>>,
        budget: usize,
    ) -> Option<Vec<Hit>> {
        let keep = |id: u32| filter.is_none_or(|f| f(id));
        let mut visited = Visited::new(self.len());
        let mut cand: BinaryHeap<Ranked> = BinaryHeap::with_capacity(ef * 2);
        let mut res: BinaryHeap<Reverse<Ranked>> = BinaryHeap::with_capacity(ef + 1);
        let mut visits = 0usize;
        for &ep in entry_points {
            if visited.insert(ep.id) {
                cand.push(Ranked(ep));
                if keep(ep.id) {
                    res.push(Reverse(Ranked(ep)));
                    if res.len() > ef {
                        res.pop();
                    }
                }
            }
        }
        while let Some(Ranked(c)) = cand.pop() {
            if res.len() >= ef {
                if let Some(Reverse(worst)) = res.peek() {
                    if Ranked(c) < *worst {
                        break;
                    }
                }
            }
            for &nb in self.links(c.id, layer) {
                if !visited.insert(nb) {
                    continue;
                }
                visits += 1;
                if visits > budget {
                    return None;
                }
                let h = Hit {
                    id: nb,
                    score: dot(q, vectors.row(nb)),
                };
                let admit = res.len() < ef || res.peek().is_none_or(|Reverse(w)| Ranked(h) > *w);
                if admit {
                    cand.push(Ranked(h));
                    if keep(nb) {
                        res.push(Reverse(Ranked(h)));
                        if res.len() > ef {
                            res.pop();
                        }
                    }
                }
            }
        }
        let mut out: Vec<Hit> = res.into_iter().map(|r| r.0.0).collect();
        sort_hits(&mut out);
        Some(out)
    }

    /// The diversity heuristic (Algorithm 4 of the paper, without the "keep pruned" fill):
    /// walks `cands` (best first, scores relative to the base node) and keeps a candidate
    /// only if it is more similar to the base than to every candidate already kept.
    fn select(vectors: &Vectors, cands: &[Hit], m: usize, out: &mut Vec<u32>) {
        out.clear();
        for c in cands {
            if out.len() >= m {
                break;
            }
            let cv = vectors.row(c.id);
            if out.iter().all(|&r| dot(cv, vectors.row(r)) <= c.score) {
                out.push(c.id);
            }
        }
    }

    /// Inserts vector `id` of the store; `id` must be `len()` (the next id).
    pub fn insert(&mut self, vectors: &Vectors, id: u32) -> Result<(), Error> {
        self.check_store(vectors)?;
        if id as usize != self.len() || id as usize >= vectors.len() {
            return Err(Error::OutOfOrder {
                id,
                len: self.len(),
                available: vectors.len(),
            });
        }
        let p = self.params;
        let level = level_for(p.seed, p.m, id);
        self.levels.push(level);
        self.l0.extend(std::iter::repeat_n(0, p.m0() + 1));
        self.upper.push(vec![0; level as usize * (p.m + 1)]);
        let Some(entry) = self.entry else {
            self.entry = Some(id);
            self.max_level = level;
            return Ok(());
        };
        let q = vectors.row(id);
        let top = level.min(self.max_level);
        let ep = self.descend(vectors, q, entry, top);
        let mut eps = vec![ep];
        let mut chosen = Vec::with_capacity(p.m0());
        let mut pool: Vec<Hit> = Vec::with_capacity(p.m0() + 1);
        for layer in (0..=top).rev() {
            let w = self
                .search_layer(vectors, q, &eps, p.ef_construction, layer, None, usize::MAX)
                .unwrap_or_default();
            Self::select(vectors, &w, p.m, &mut chosen);
            self.set_links(id, layer, &chosen);
            let bound = if layer == 0 { p.m0() } else { p.m };
            for &nb in &chosen {
                let cur = self.links(nb, layer);
                if cur.len() < bound {
                    let mut next = cur.to_vec();
                    next.push(id);
                    self.set_links(nb, layer, &next);
                } else {
                    let nv = vectors.row(nb);
                    pool.clear();
                    pool.extend(cur.iter().map(|&x| Hit {
                        id: x,
                        score: dot(nv, vectors.row(x)),
                    }));
                    pool.push(Hit {
                        id,
                        score: dot(nv, q),
                    });
                    sort_hits(&mut pool);
                    let mut kept = Vec::with_capacity(bound);
                    Self::select(vectors, &pool, bound, &mut kept);
                    self.set_links(nb, layer, &kept);
                }
            }
            if !w.is_empty() {
                eps = w;
            }
        }
        if level > self.max_level {
            self.entry = Some(id);
            self.max_level = level;
        }
        Ok(())
    }

    /// The approximate `k` nearest neighbours of `query` with beam width `max(ef, k)`.
    pub fn search(
        &self,
        vectors: &Vectors,
        query: &[f32],
        k: usize,
        ef: usize,
    ) -> Result<Vec<Hit>, Error> {
        self.search_filtered(vectors, query, k, ef, None)
    }

    /// Like [`Hnsw::search`], restricted to the ids the filter keeps.
    ///
    /// The filter acts inside the traversal: every node is walked through, only kept nodes
    /// enter the results, and the beam is at least [`FILTER_OVERFETCH`]` · k` wide. If the
    /// traversal visits more than a quarter of the graph (a very selective filter, where a
    /// scan is cheaper) or finds fewer than `k` kept nodes, the answer comes from
    /// [`exact::search`] instead, so a filtered search never returns fewer hits than exist.
    pub fn search_filtered(
        &self,
        vectors: &Vectors,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<Filter<'_>>,
    ) -> Result<Vec<Hit>, Error> {
        self.check_store(vectors)?;
        vectors.check(query)?;
        let Some(entry) = self.entry else {
            return Ok(Vec::new());
        };
        if k == 0 {
            return Ok(Vec::new());
        }
        let ep = self.descend(vectors, query, entry, 0);
        let (ef, budget) = match filter {
            None => (ef.max(k), usize::MAX),
            Some(_) => (
                ef.max(k.saturating_mul(FILTER_OVERFETCH)),
                (self.len() / 4).max(1024),
            ),
        };
        match self.search_layer(vectors, query, &[ep], ef, 0, filter, budget) {
            Some(mut hits) if hits.len() >= k || filter.is_none() => {
                hits.truncate(k);
                Ok(hits)
            }
            _ => {
                // Too selective for the graph: scan the graph's ids exactly.
                let n = self.len() as u32;
                let in_graph = |id: u32| id < n && filter.is_none_or(|f| f(id));
                exact::search(vectors, query, k, Some(&in_graph))
            }
        }
    }

    /// Serialised form: `"MNHW" | version | dim u32 | m u32 | ef_construction u32 |
    /// ef_search u32 | seed u64 | len u64 | entry u32 (u32::MAX: none) | max_level u8 |
    /// levels (len bytes) | per node, per layer 0..=level: count u8, count × id u32 | xxh3-64`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(
            MAGIC,
            VERSION,
            48 + self.len() * (1 + 4 * self.params.m + 4),
        );
        w.u32(self.dim as u32);
        w.u32(self.params.m as u32);
        w.u32(self.params.ef_construction as u32);
        w.u32(self.params.ef_search as u32);
        w.u64(self.params.seed);
        w.u64(self.len() as u64);
        w.u32(self.entry.unwrap_or(u32::MAX));
        w.u8(self.max_level);
        w.bytes(&self.levels);
        for node in 0..self.len() as u32 {
            for layer in 0..=self.levels[node as usize] {
                let l = self.links(node, layer);
                w.u8(l.len() as u8);
                for &x in l {
                    w.u32(x);
                }
            }
        }
        w.finish()
    }

    /// Reads a graph written by [`Hnsw::to_bytes`], checking every invariant the traversal
    /// relies on.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::open(bytes, MAGIC, VERSION)?;
        let dim = r.u32("dimension")? as usize;
        if dim == 0 || dim > MAX_DIM {
            return Err(Error::Corrupt("dimension out of range"));
        }
        let params = HnswParams {
            m: r.u32("m")? as usize,
            ef_construction: r.u32("ef_construction")? as usize,
            ef_search: r.u32("ef_search")? as usize,
            seed: r.u64("seed")?,
        };
        params
            .validate()
            .map_err(|_| Error::Corrupt("parameters out of range"))?;
        let n = r.u64("length")?;
        if n > u64::from(u32::MAX) {
            return Err(Error::Corrupt("length"));
        }
        let n = n as usize;
        let entry = r.u32("entry")?;
        let max_level = r.u8("max level")?;
        let levels = r.take(n, "levels")?.to_vec();
        let mut g = Hnsw::new(dim, params).map_err(|_| Error::Corrupt("parameters"))?;
        for (id, &l) in (0u32..).zip(&levels) {
            if l != level_for(params.seed, params.m, id) {
                return Err(Error::Corrupt("node level does not match the seed"));
            }
        }
        let top = levels.iter().copied().max().unwrap_or(0);
        if n == 0 {
            if entry != u32::MAX || max_level != 0 {
                return Err(Error::Corrupt("entry point in an empty graph"));
            }
        } else if entry as usize >= n || levels[entry as usize] != top || max_level != top {
            return Err(Error::Corrupt("entry point"));
        }
        g.levels = levels;
        g.l0.reserve(n.min(r.remaining()) * (params.m0() + 1));
        g.upper.reserve(n.min(r.remaining()));
        let mut ids = Vec::with_capacity(params.m0());
        for node in 0..n as u32 {
            let level = g.levels[node as usize];
            g.l0.extend(std::iter::repeat_n(0, params.m0() + 1));
            g.upper.push(vec![0; level as usize * (params.m + 1)]);
            for layer in 0..=level {
                let count = r.u8("link count")? as usize;
                let bound = if layer == 0 { params.m0() } else { params.m };
                if count > bound {
                    return Err(Error::Corrupt("too many links"));
                }
                ids.clear();
                for _ in 0..count {
                    let x = r.u32("link")?;
                    if x as usize >= n || x == node || g.levels[x as usize] < layer {
                        return Err(Error::Corrupt("link to a missing node"));
                    }
                    ids.push(x);
                }
                g.set_links(node, layer, &ids);
            }
        }
        r.finish()?;
        g.entry = if n == 0 { None } else { Some(entry) };
        g.max_level = max_level;
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_geometric_law() {
        let m = 16;
        let n = 200_000u32;
        let above: usize = (0..n).filter(|&i| level_for(7, m, i) >= 1).count();
        let expect = n as f64 / m as f64;
        assert!(
            (above as f64 - expect).abs() < 0.05 * expect,
            "{above} vs {expect}"
        );
        assert_eq!(level_for(7, m, 12345), level_for(7, m, 12345));
    }
}
