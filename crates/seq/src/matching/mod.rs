//! Sequence matching on dense symbol ids: the LCS length (RapidFuzz `LCSseq` semantics, a
//! bit-parallel kernel with a plain reference), Ratcliff/Obershelp matching blocks exactly as
//! CPython's difflib computes them without junk or autojunk, and the character-level
//! `fuzz.ratio` of KATO's character mode.

mod blocks;
mod fast;
mod lcs;

pub use blocks::{Block, MatchingBlocks, matched_size};
pub use fast::{BlockScratch, StateIndex};
pub use lcs::{LcsMasks, lcs_len, lcs_len_reference};

/// RapidFuzz `fuzz.ratio` of two strings, over Unicode code points: the Indel similarity
/// `(1 - (len_a + len_b - 2 * lcs) / (len_a + len_b)) * 100`, 100 for two empty strings.
pub fn fuzz_ratio(a: &str, b: &str) -> f64 {
    let a: Vec<u32> = a.chars().map(|c| c as u32).collect();
    let b: Vec<u32> = b.chars().map(|c| c as u32).collect();
    let lensum = a.len() + b.len();
    if lensum == 0 {
        return 100.0;
    }
    let lcs = lcs_len(&a, &b);
    let distance = lensum - 2 * lcs;
    let normalized_distance = distance as f64 / lensum as f64;
    (1.0 - normalized_distance) * 100.0
}

#[cfg(test)]
mod tests;
