//! The cluster's own async runtime, and the one way the synchronous engine waits for it.
//!
//! The engines and the service layer are synchronous; the PostgreSQL and Redis clients are
//! async. The cluster owns a small runtime that drives the connections (and the change
//! listener); a caller waits for one operation with [`Bridge::wait`], from a blocking thread
//! (the HTTP layer's) or, for the few routes answered inline, from an async thread of another
//! runtime (which then lends its thread with `block_in_place`).

use std::future::Future;
use std::time::Duration;

pub(crate) struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Bridge {
    pub(crate) fn new(threads: usize) -> std::io::Result<Bridge> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("mneme-cluster")
            .enable_all()
            .build()?;
        Ok(Bridge {
            runtime: Some(runtime),
        })
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the bridge")
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime().handle()
    }

    /// Runs `future` to completion on the cluster's runtime and returns its output.
    pub(crate) fn wait<F: Future>(&self, future: F) -> F::Output {
        match tokio::runtime::Handle::try_current() {
            // An async thread of another runtime (a route answered inline): it lends its
            // thread for the wait instead of stalling its other tasks.
            Ok(_) => tokio::task::block_in_place(|| self.runtime().block_on(future)),
            Err(_) => self.runtime().block_on(future),
        }
    }

    /// Like [`Bridge::wait`], giving up after `limit`.
    pub(crate) fn wait_for<F: Future>(&self, limit: Duration, future: F) -> Option<F::Output> {
        self.wait(async move { tokio::time::timeout(limit, future).await.ok() })
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropping a runtime inside an async context panics; this never waits.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
