//! The one way handlers leave the async threads: [`run`] with the [`Lane`] the work belongs
//! in. Knowledge-base keyword queries and KATO reads stay inline (well under a millisecond,
//! cheaper than a thread handoff); work that scores, embeds or waits for a commit takes one of
//! at most 2 × cores blocking threads (a semaphore: a burst queues in order instead of
//! time-slicing dozens of threads); work that mostly waits for the disk (ingests, the project
//! registry, archives, the resource sampler, session creation, which may load a node) gets a
//! blocking thread of its own.

use std::sync::Arc;

use super::ServerState;
use crate::error::ApiError;

/// Where a piece of work runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Short CPU work that never waits for the disk: on the async thread.
    Inline,
    /// CPU-bound or commit-waiting work of the engines: a blocking thread, at most
    /// 2 × cores at once.
    Cpu,
    /// Long work that mostly waits for the disk: a blocking thread of its own.
    Io,
}

/// Runs `work` in `lane` and answers what it returns; a panic inside it answers the 500 of a
/// panicking handler (and is logged with its message).
pub async fn run<T: Send + 'static>(
    state: &Arc<ServerState>,
    lane: Lane,
    work: impl FnOnce(&ServerState) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = match lane {
        Lane::Inline => return Ok(work(state)),
        // The semaphore is never closed, so acquiring only waits.
        Lane::Cpu => state.blocking_slots.acquire().await.ok(),
        Lane::Io => None,
    };
    let worker = state.clone();
    tokio::task::spawn_blocking(move || work(&worker))
        .await
        .map_err(|err| {
            let message = match err.try_into_panic() {
                Ok(payload) => crate::error::panic_message(payload.as_ref()),
                Err(err) => err.to_string(),
            };
            tracing::error!("a request's blocking work failed: {message}");
            ApiError::panicked()
        })
}
