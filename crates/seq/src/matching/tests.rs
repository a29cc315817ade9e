use proptest::prelude::*;

use super::*;

fn blocks(a: &[u32], b: &[u32]) -> Vec<(usize, usize, usize)> {
    MatchingBlocks::new(b)
        .blocks(a)
        .iter()
        .map(|x| (x.a, x.b, x.size))
        .collect()
}

#[test]
fn matching_blocks_agree_with_cpython_difflib() {
    // Expected values printed by CPython 3.11 (the terminator left out):
    // difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()
    assert_eq!(blocks(&[1, 2, 3, 4], &[2, 3]), [(1, 0, 2)]);
    assert_eq!(blocks(&[1, 9, 1, 2], &[1, 2]), [(2, 0, 2)]);
    assert_eq!(blocks(&[2, 9, 2, 3], &[2, 3]), [(2, 0, 2)]);
    assert_eq!(blocks(&[1, 2, 3, 1, 2, 3], &[1, 2, 3]), [(0, 0, 3)]);
    assert_eq!(
        blocks(&[1, 5, 2, 6, 3], &[1, 2, 3]),
        [(0, 0, 1), (2, 1, 1), (4, 2, 1)]
    );
    assert_eq!(blocks(&[1, 2], &[3, 4]), []);
    assert_eq!(blocks(&[], &[1]), []);
}

#[test]
fn fuzz_ratio_matches_rapidfuzz() {
    assert_eq!(fuzz_ratio("", ""), 100.0);
    assert_eq!(fuzz_ratio("abc", "abc"), 100.0);
    // rapidfuzz.fuzz.ratio("this is a test", "this is a test!") == 96.55172413793103
    assert_eq!(
        fuzz_ratio("this is a test", "this is a test!"),
        96.55172413793103
    );
    // rapidfuzz 3.14: fuzz.ratio("日本語 a", "日本 b") == 66.66666666666667
    assert_eq!(fuzz_ratio("日本語 a", "日本 b"), 66.66666666666667);
}

proptest! {
    #[test]
    fn bit_parallel_lcs_equals_the_reference(
        a in prop::collection::vec(0u32..6, 0..150),
        b in prop::collection::vec(0u32..6, 0..150),
    ) {
        prop_assert_eq!(lcs_len(&a, &b), lcs_len_reference(&a, &b));
        prop_assert_eq!(lcs_len(&b, &a), lcs_len_reference(&a, &b));
    }

    #[test]
    fn blocks_are_increasing_common_runs_no_longer_than_the_lcs(
        a in prop::collection::vec(0u32..5, 0..40),
        b in prop::collection::vec(0u32..5, 0..40),
    ) {
        let found = MatchingBlocks::new(&b).blocks(&a);
        let mut end = (0, 0);
        for block in &found {
            prop_assert!(block.size > 0);
            prop_assert!(block.a >= end.0 && block.b >= end.1);
            prop_assert_eq!(&a[block.a..block.a + block.size], &b[block.b..block.b + block.size]);
            end = (block.a + block.size, block.b + block.size);
        }
        prop_assert!(found.iter().map(|x| x.size).sum::<usize>() <= lcs_len_reference(&a, &b));
    }
}

proptest! {
    #[test]
    fn the_state_index_agrees_with_the_plain_matchers(
        a in prop::collection::vec(0u32..8, 0..60),
        b in prop::collection::vec(0u32..8, 0..90),
        big in any::<bool>(),
    ) {
        // Large ids exercise the sparse lookup.
        let shift = if big { 5_000_000 } else { 0 };
        let a: Vec<u32> = a.iter().map(|x| x + shift).collect();
        let b: Vec<u32> = b.iter().map(|x| x + shift).collect();
        let index = StateIndex::new(&b);
        prop_assert_eq!(index.lcs(&a), lcs_len_reference(&a, &b));
        let mut out = Vec::new();
        let mut scratch = BlockScratch::default();
        index.blocks(&a, &mut out, &mut scratch);
        prop_assert_eq!(&out, &MatchingBlocks::new(&b).blocks(&a));
        // Reusing the scratch gives the same answer.
        index.blocks(&a, &mut out, &mut scratch);
        prop_assert_eq!(&out, &MatchingBlocks::new(&b).blocks(&a));
    }
}

#[test]
fn a_state_of_many_distinct_symbols_keeps_its_masks_sparse_and_agrees() {
    // 10,000 distinct symbols: dense masks would be 10,000 × 157 words; the sparse rows give
    // the same LCS as the plain matcher.
    let b: Vec<u32> = (0..10_000u32).map(|i| i * 7 % 10_007).collect();
    let index = StateIndex::new(&b);
    assert!(index.masks_are_sparse());
    let mut seed = 12345u64;
    for len in [1usize, 5, 64, 65, 300] {
        let a: Vec<u32> = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (seed >> 33) as u32 % 10_007
            })
            .collect();
        assert_eq!(index.lcs(&a), lcs_len_reference(&a, &b), "pattern of {len}");
    }
    let ordered: Vec<u32> = b.iter().step_by(3).copied().collect();
    assert_eq!(index.lcs(&ordered), ordered.len());
}
