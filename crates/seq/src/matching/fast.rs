//! The hot-path matchers, specialised for one state (the STM) scored against many patterns:
//! a symbol-to-slot table built once per prediction replaces hashing, the bit-parallel LCS
//! reads its masks by slot, and the matching blocks reuse caller-owned buffers. They are
//! tested against the plain implementations of `lcs.rs` and `blocks.rs`.

use std::collections::HashMap;

use super::Block;

/// Above this symbol id, slots are looked up in a hash map instead of a dense table.
const DENSE_LIMIT: u32 = 1 << 20;
/// Above this many mask words (distinct symbols × words of the state), the masks are kept
/// sparse: a state of n distinct symbols would otherwise hold n²/64 words (1.25 GB at 100,000).
const DENSE_MASK_WORDS: usize = 1 << 20;

enum Lookup {
    Dense(Vec<u32>),
    Sparse(HashMap<u32, u32>),
}

/// The state (a sequence of symbol ids) indexed for matching.
pub struct StateIndex {
    state: Vec<u32>,
    words: usize,
    lookup: Lookup,
    /// Per slot: the positions of that symbol in the state (ascending).
    positions: Vec<Vec<u32>>,
    /// Per slot: `words` words of position bits (empty when the masks are sparse).
    masks: Vec<u64>,
    /// Per slot: its non-zero mask words as (word index, bits), ascending (only when the dense
    /// masks would be too big).
    sparse: Vec<Vec<(u32, u64)>>,
}

/// Reusable buffers of `StateIndex::blocks`.
#[derive(Default)]
pub struct BlockScratch {
    queue: Vec<(usize, usize, usize, usize)>,
    found: Vec<Block>,
    j2len: Vec<(u32, u32)>,
    new_j2len: Vec<(u32, u32)>,
    generation: u32,
}

impl StateIndex {
    pub fn new(state: &[u32]) -> StateIndex {
        let words = state.len().div_ceil(64).max(1);
        let max = state.iter().copied().max().unwrap_or(0);
        let mut slots: HashMap<u32, u32> = HashMap::new();
        let mut positions: Vec<Vec<u32>> = Vec::new();
        for (pos, &symbol) in state.iter().enumerate() {
            let next = slots.len() as u32;
            let slot = *slots.entry(symbol).or_insert(next);
            if slot == next {
                positions.push(Vec::new());
            }
            positions[slot as usize].push(pos as u32);
        }
        let (mut masks, mut sparse) = (Vec::new(), Vec::new());
        if positions.len().saturating_mul(words) <= DENSE_MASK_WORDS {
            masks = vec![0u64; positions.len() * words];
            for (slot, at) in positions.iter().enumerate() {
                for &pos in at {
                    masks[slot * words + pos as usize / 64] |= 1 << (pos % 64);
                }
            }
        } else {
            sparse = positions
                .iter()
                .map(|at| {
                    let mut row: Vec<(u32, u64)> = Vec::new();
                    for &pos in at {
                        let word = pos / 64;
                        match row.last_mut() {
                            Some((w, bits)) if *w == word => *bits |= 1 << (pos % 64),
                            _ => row.push((word, 1 << (pos % 64))),
                        }
                    }
                    row
                })
                .collect();
        }
        let lookup = if max < DENSE_LIMIT {
            let mut dense = vec![0u32; max as usize + 1];
            for (&symbol, &slot) in &slots {
                dense[symbol as usize] = slot + 1;
            }
            Lookup::Dense(dense)
        } else {
            Lookup::Sparse(slots.into_iter().map(|(s, slot)| (s, slot + 1)).collect())
        };
        StateIndex {
            state: state.to_vec(),
            words,
            lookup,
            positions,
            masks,
            sparse,
        }
    }

    /// The mask words of `slot` (1-based), dense or expanded from the sparse rows into `row`.
    fn mask_row<'s>(&'s self, slot: u32, row: &'s mut Vec<u64>) -> &'s [u64] {
        let slot = slot as usize - 1;
        if self.sparse.is_empty() {
            return &self.masks[slot * self.words..(slot + 1) * self.words];
        }
        row.clear();
        row.resize(self.words, 0);
        for &(word, bits) in &self.sparse[slot] {
            row[word as usize] = bits;
        }
        row
    }

    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// Whether the masks are kept sparse (a state of many distinct symbols).
    pub fn masks_are_sparse(&self) -> bool {
        !self.sparse.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// The slot of a symbol (0 when the state does not contain it).
    #[inline]
    fn slot(&self, symbol: u32) -> u32 {
        match &self.lookup {
            Lookup::Dense(dense) => dense.get(symbol as usize).copied().unwrap_or(0),
            Lookup::Sparse(map) => map.get(&symbol).copied().unwrap_or(0),
        }
    }

    pub fn contains(&self, symbol: u32) -> bool {
        self.slot(symbol) != 0
    }

    /// LCS length of `pattern` and the state (Hyyrö's bit-parallel algorithm).
    pub fn lcs(&self, pattern: &[u32]) -> usize {
        let n = self.state.len();
        if n == 0 || pattern.is_empty() {
            return 0;
        }
        if self.words == 1 {
            let mut v = u64::MAX;
            let mut row = Vec::new();
            for &symbol in pattern {
                let slot = self.slot(symbol);
                if slot != 0 {
                    let m = self.mask_row(slot, &mut row)[0];
                    let u = v & m;
                    v = v.wrapping_add(u) | (v & !m);
                }
            }
            let valid = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            return (!v & valid).count_ones() as usize;
        }
        let mut v = vec![u64::MAX; self.words];
        let mut row = Vec::new();
        for &symbol in pattern {
            let slot = self.slot(symbol);
            if slot == 0 {
                continue;
            }
            let mask = self.mask_row(slot, &mut row);
            let mut carry = 0u64;
            for (word, &m) in v.iter_mut().zip(mask) {
                let u = *word & m;
                let (sum, c1) = word.overflowing_add(u);
                let (sum, c2) = sum.overflowing_add(carry);
                carry = u64::from(c1 || c2);
                *word = sum | (*word & !m);
            }
        }
        let mut matched = 0;
        for (i, word) in v.iter().enumerate() {
            let bits = (n - i * 64).min(64);
            let valid = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            matched += (!word & valid).count_ones() as usize;
        }
        matched
    }

    /// difflib's matching blocks of `a` against the state (no junk), into `out`.
    pub fn blocks(&self, a: &[u32], out: &mut Vec<Block>, scratch: &mut BlockScratch) {
        out.clear();
        let lb = self.state.len();
        if scratch.j2len.len() < lb {
            scratch.j2len.resize(lb, (0, 0));
            scratch.new_j2len.resize(lb, (0, 0));
        }
        scratch.found.clear();
        scratch.queue.clear();
        scratch.queue.push((0, a.len(), 0, lb));
        while let Some((alo, ahi, blo, bhi)) = scratch.queue.pop() {
            let block = self.longest_match(a, alo, ahi, blo, bhi, scratch);
            if block.size > 0 {
                scratch.found.push(block);
                if alo < block.a && blo < block.b {
                    scratch.queue.push((alo, block.a, blo, block.b));
                }
                if block.a + block.size < ahi && block.b + block.size < bhi {
                    scratch
                        .queue
                        .push((block.a + block.size, ahi, block.b + block.size, bhi));
                }
            }
        }
        scratch.found.sort_unstable();
        for &block in &scratch.found {
            match out.last_mut() {
                Some(last) if last.a + last.size == block.a && last.b + last.size == block.b => {
                    last.size += block.size
                }
                _ => out.push(block),
            }
        }
    }

    /// `find_longest_match` with the `j2len` maps as generation-stamped arrays: an entry is
    /// valid only if stamped with the previous row's generation.
    fn longest_match(
        &self,
        a: &[u32],
        alo: usize,
        ahi: usize,
        blo: usize,
        bhi: usize,
        scratch: &mut BlockScratch,
    ) -> Block {
        let (mut best_i, mut best_j, mut best_size) = (alo, blo, 0usize);
        // A fresh generation for the (empty) row before `alo`.
        scratch.generation = scratch.generation.wrapping_add(1);
        if scratch.generation == 0 {
            scratch.j2len.iter_mut().for_each(|e| *e = (0, 0));
            scratch.new_j2len.iter_mut().for_each(|e| *e = (0, 0));
            scratch.generation = 1;
        }
        let mut previous = scratch.generation;
        for (i, &symbol) in a.iter().enumerate().take(ahi).skip(alo) {
            scratch.generation = scratch.generation.wrapping_add(1);
            if scratch.generation == 0 {
                scratch.generation = 1;
            }
            let current = scratch.generation;
            let slot = self.slot(symbol);
            if slot != 0 {
                for &j in &self.positions[slot as usize - 1] {
                    let j = j as usize;
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let before = if j > 0 {
                        let (generation, len) = scratch.j2len[j - 1];
                        if generation == previous { len } else { 0 }
                    } else {
                        0
                    };
                    let k = before + 1;
                    scratch.new_j2len[j] = (current, k);
                    if k as usize > best_size {
                        best_i = i + 1 - k as usize;
                        best_j = j + 1 - k as usize;
                        best_size = k as usize;
                    }
                }
            }
            std::mem::swap(&mut scratch.j2len, &mut scratch.new_j2len);
            previous = current;
        }
        Block {
            a: best_i,
            b: best_j,
            size: best_size,
        }
    }
}
