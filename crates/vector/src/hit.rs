use std::cmp::Ordering;

/// One search result: a vector id and its score (the dot product with the query).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: u32,
    pub score: f32,
}

impl Hit {
    /// The result order: higher score first, then lower id. Total because scores are finite
    /// (and `total_cmp` keeps it total even if one were not).
    #[inline]
    pub fn rank_cmp(&self, other: &Hit) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.id.cmp(&other.id))
    }
}

/// A hit ordered so that `a > b` means `a` ranks better (higher score, then lower id).
/// Max-heaps of `Ranked` pop the best hit; max-heaps of `Reverse<Ranked>` pop the worst.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ranked(pub Hit);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.rank_cmp(&self.0)
    }
}

/// Sorts hits into the result order.
pub(crate) fn sort_hits(hits: &mut [Hit]) {
    hits.sort_unstable_by(Hit::rank_cmp);
}
