//! Request counters shared by every node (cluster mode: Redis), behind the rate limits, so that
//! a client's limit counts its requests to all nodes together.

/// Fixed windows of request counts, shared by every node.
pub trait SharedWindows: Send + Sync {
    /// Counts one request in each window of `windows` (its key and limit), all lasting
    /// `window_ms` from their first request, unless one of them is full already, in which case
    /// none counts. Answers whether the request was counted and, per window, its count (with
    /// this request when counted) and the milliseconds left until it starts again. An error
    /// says why the counters cannot be reached.
    fn hit(&self, windows: &[(String, u64)], window_ms: u64) -> Result<Hit, String>;
}

/// What [`SharedWindows::hit`] answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub counted: bool,
    /// Per window, in the order asked: (count, milliseconds left).
    pub windows: Vec<(u64, u64)>,
}
