//! difflib's `SequenceMatcher.get_matching_blocks()` with no junk and no autojunk (KATO ships
//! its own copy of difflib that behaves so): the longest common contiguous run, ties broken by
//! the smallest start in `a` and then in `b`, recursively on both sides; blocks sorted, adjacent
//! ones merged, and a `(len(a), len(b), 0)` terminator appended.

use std::collections::HashMap;

/// A matching block: `a[a_start..a_start+size] == b[b_start..b_start+size]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Block {
    pub a: usize,
    pub b: usize,
    pub size: usize,
}

/// Matching blocks of `a` against a fixed `b` (difflib's `seq2`, whose index `b2j` is built
/// once and reused for every `a`).
#[derive(Clone, Debug, Default)]
pub struct MatchingBlocks {
    b: Vec<u32>,
    b2j: HashMap<u32, Vec<usize>>,
}

impl MatchingBlocks {
    pub fn new(b: &[u32]) -> MatchingBlocks {
        let mut b2j: HashMap<u32, Vec<usize>> = HashMap::new();
        for (j, &x) in b.iter().enumerate() {
            b2j.entry(x).or_default().push(j);
        }
        MatchingBlocks { b: b.to_vec(), b2j }
    }

    /// The real blocks (without the terminator), in order.
    pub fn blocks(&self, a: &[u32]) -> Vec<Block> {
        let mut found = Vec::new();
        let mut queue = vec![(0, a.len(), 0, self.b.len())];
        let mut j2len: HashMap<usize, usize> = HashMap::new();
        let mut new_j2len: HashMap<usize, usize> = HashMap::new();
        while let Some((alo, ahi, blo, bhi)) = queue.pop() {
            let block = self.longest_match(a, alo, ahi, blo, bhi, &mut j2len, &mut new_j2len);
            if block.size > 0 {
                found.push(block);
                if alo < block.a && blo < block.b {
                    queue.push((alo, block.a, blo, block.b));
                }
                if block.a + block.size < ahi && block.b + block.size < bhi {
                    queue.push((block.a + block.size, ahi, block.b + block.size, bhi));
                }
            }
        }
        found.sort();
        let mut merged: Vec<Block> = Vec::with_capacity(found.len());
        for block in found {
            match merged.last_mut() {
                Some(last) if last.a + last.size == block.a && last.b + last.size == block.b => {
                    last.size += block.size;
                }
                _ => merged.push(block),
            }
        }
        merged
    }

    /// difflib's `find_longest_match(alo, ahi, blo, bhi)` without junk: the earliest longest
    /// run (its extension loops are no-ops when nothing is junk).
    #[allow(clippy::too_many_arguments)]
    fn longest_match(
        &self,
        a: &[u32],
        alo: usize,
        ahi: usize,
        blo: usize,
        bhi: usize,
        j2len: &mut HashMap<usize, usize>,
        new_j2len: &mut HashMap<usize, usize>,
    ) -> Block {
        let (mut best_i, mut best_j, mut best_size) = (alo, blo, 0);
        j2len.clear();
        for (i, symbol) in a.iter().enumerate().take(ahi).skip(alo) {
            new_j2len.clear();
            if let Some(positions) = self.b2j.get(symbol) {
                for &j in positions {
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let k = if j > 0 {
                        j2len.get(&(j - 1)).copied().unwrap_or(0)
                    } else {
                        0
                    } + 1;
                    new_j2len.insert(j, k);
                    if k > best_size {
                        best_i = i + 1 - k;
                        best_j = j + 1 - k;
                        best_size = k;
                    }
                }
            }
            std::mem::swap(j2len, new_j2len);
        }
        Block {
            a: best_i,
            b: best_j,
            size: best_size,
        }
    }
}

/// Total size of the matching blocks of `a` against `b`.
pub fn matched_size(a: &[u32], b: &[u32]) -> usize {
    MatchingBlocks::new(b)
        .blocks(a)
        .iter()
        .map(|block| block.size)
        .sum()
}
