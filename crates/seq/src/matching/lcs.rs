//! Longest common subsequence length.
//!
//! The kernel is Hyyrö's bit-parallel algorithm: the shorter-lived side (the state, fixed for
//! a whole prediction) is encoded once as per-symbol bit masks, then each pattern is scanned
//! once, `ceil(len(state) / 64)` words per pattern symbol. `lcs_len_reference` is the
//! textbook dynamic programme the kernel is tested against.

use std::collections::HashMap;

/// The state side of the bit-parallel LCS: for every distinct symbol, the positions where it
/// occurs, as a bit set of `words` 64-bit words.
#[derive(Clone, Debug, Default)]
pub struct LcsMasks {
    len: usize,
    words: usize,
    slots: HashMap<u32, usize>,
    masks: Vec<u64>,
}

impl LcsMasks {
    pub fn new(state: &[u32]) -> LcsMasks {
        let words = state.len().div_ceil(64).max(1);
        let mut slots: HashMap<u32, usize> = HashMap::new();
        let mut masks = Vec::new();
        for (pos, &symbol) in state.iter().enumerate() {
            let next = slots.len();
            let slot = *slots.entry(symbol).or_insert(next);
            if slot == next {
                masks.resize(masks.len() + words, 0);
            }
            masks[slot * words + pos / 64] |= 1 << (pos % 64);
        }
        LcsMasks {
            len: state.len(),
            words,
            slots,
            masks,
        }
    }

    /// Whether `symbol` occurs in the state.
    pub fn contains(&self, symbol: u32) -> bool {
        self.slots.contains_key(&symbol)
    }

    /// LCS length of `pattern` and the state.
    pub fn lcs(&self, pattern: &[u32]) -> usize {
        if self.len == 0 || pattern.is_empty() {
            return 0;
        }
        if self.words == 1 {
            return self.lcs_one_word(pattern);
        }
        let mut v = vec![u64::MAX; self.words];
        for symbol in pattern {
            let Some(&slot) = self.slots.get(symbol) else {
                continue;
            };
            let mask = &self.masks[slot * self.words..(slot + 1) * self.words];
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
            let bits = (self.len - i * 64).min(64);
            let valid = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            matched += (!word & valid).count_ones() as usize;
        }
        matched
    }

    fn lcs_one_word(&self, pattern: &[u32]) -> usize {
        let mut v = u64::MAX;
        for symbol in pattern {
            if let Some(&slot) = self.slots.get(symbol) {
                let m = self.masks[slot];
                let u = v & m;
                v = v.wrapping_add(u) | (v & !m);
            }
        }
        let valid = if self.len == 64 {
            u64::MAX
        } else {
            (1u64 << self.len) - 1
        };
        (!v & valid).count_ones() as usize
    }
}

/// LCS length of two sequences (bit-parallel).
pub fn lcs_len(a: &[u32], b: &[u32]) -> usize {
    LcsMasks::new(b).lcs(a)
}

/// LCS length by the quadratic dynamic programme: the reference for tests.
pub fn lcs_len_reference(a: &[u32], b: &[u32]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut row = vec![0usize; b.len() + 1];
    for &x in a {
        for (j, &y) in b.iter().enumerate() {
            row[j + 1] = if x == y {
                prev[j] + 1
            } else {
                row[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}
