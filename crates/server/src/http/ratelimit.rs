//! Rate limits, off by default: a per-client limit (per API key, or per address on an open
//! server) over 60-second windows, and per-route limits per client per minute. Answers 429
//! with `X-RateLimit-*` headers in KnowledgeBeast's two body shapes.
//!
//! In cluster mode the windows are counted in Redis ([`SharedWindows`]), so a client's limit
//! holds across every node; while Redis cannot be reached each node counts on its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mneme_app::limits::SharedWindows;

use crate::error::ApiError;

const WINDOW: Duration = Duration::from_secs(60);

/// The state of the window that decided a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub limit: u64,
    pub remaining: u64,
    pub reset_unix: u64,
}

#[derive(Clone, Debug)]
pub struct Rejection {
    pub window: Option<Window>,
    per_route: bool,
}

impl Rejection {
    pub fn response(&self) -> Response {
        let limit = self.window.map_or(0, |w| w.limit);
        let status = StatusCode::TOO_MANY_REQUESTS;
        let answer = if self.per_route {
            ApiError::error(status, format!("Rate limit exceeded: {limit} per 1 minute"))
        } else {
            ApiError::detail(
                status,
                format!("Rate limit exceeded. Limit: {limit} requests per 60s"),
            )
        };
        answer.into_response()
    }
}

#[derive(Debug)]
struct Counter {
    started: Instant,
    count: u64,
}

pub struct RateLimiter {
    per_client: u64,
    routes: Vec<(String, u64)>,
    counters: Mutex<HashMap<(String, String), Counter>>,
    /// Cluster mode: the windows every node counts in.
    shared: Option<Arc<dyn SharedWindows>>,
    /// Whether the shared windows failed last time (the warning is logged once per outage).
    shared_down: AtomicBool,
    /// After a failure, the shared windows are not asked again before this instant (so that
    /// an outage does not slow every request by a connection attempt).
    retry_shared_at: Mutex<Option<Instant>>,
}

/// How long each node counts on its own after the shared windows failed.
const SHARED_RETRY: Duration = Duration::from_secs(2);

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_client", &self.per_client)
            .field("routes", &self.routes)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    pub fn new(per_client: u64, routes: Vec<(String, u64)>) -> RateLimiter {
        RateLimiter {
            per_client,
            routes,
            counters: Mutex::new(HashMap::new()),
            shared: None,
            shared_down: AtomicBool::new(false),
            retry_shared_at: Mutex::new(None),
        }
    }

    /// The same limits, counted in `shared` by every node.
    pub fn with_shared(mut self, shared: Arc<dyn SharedWindows>) -> RateLimiter {
        self.shared = Some(shared);
        self
    }

    pub fn enabled(&self) -> bool {
        self.per_client > 0 || !self.routes.is_empty()
    }

    /// The windows a request of `client` on `route` counts in: (limit, scope, per route).
    fn windows(&self, route: &str) -> Vec<(u64, String, bool)> {
        let route_limit = self
            .routes
            .iter()
            .find(|(r, _)| r == route)
            .map(|(_, n)| *n);
        [
            (self.per_client, String::new(), false),
            (route_limit.unwrap_or(0), route.to_owned(), true),
        ]
        .into_iter()
        .filter(|(limit, _, _)| *limit > 0)
        .collect()
    }

    /// Counts one request of `client` on `route`; the tightest window is reported.
    pub fn check(&self, client: &str, route: &str) -> Result<Option<Window>, Rejection> {
        if !self.enabled() {
            return Ok(None);
        }
        let now = Instant::now();
        let shared = self.shared.as_ref().filter(|_| {
            let retry = self
                .retry_shared_at
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            retry.is_none_or(|at| now >= at)
        });
        if let Some(shared) = shared {
            match self.check_shared(shared.as_ref(), client, route) {
                Ok(decided) => {
                    if self.shared_down.swap(false, Ordering::Relaxed) {
                        tracing::info!("rate limits: counting across the cluster again");
                    }
                    return decided;
                }
                Err(why) => {
                    *self
                        .retry_shared_at
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(now + SHARED_RETRY);
                    if !self.shared_down.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "rate limits: the shared counters are out of reach ({why}); each node counts on its own until they are back"
                        );
                    }
                }
            }
        }
        self.check_local(client, route)
    }

    /// [`RateLimiter::check`] on the cluster's windows; an error when they cannot be reached.
    fn check_shared(
        &self,
        shared: &dyn SharedWindows,
        client: &str,
        route: &str,
    ) -> Result<Result<Option<Window>, Rejection>, String> {
        let windows = self.windows(route);
        let keys: Vec<(String, u64)> = windows
            .iter()
            .map(|(limit, scope, _)| {
                // One hash tag per client: its windows live in one Redis Cluster slot.
                (format!("mneme:rl:{{{client}}}:{scope}"), *limit)
            })
            .collect();
        let hit = shared.hit(&keys, WINDOW.as_millis() as u64)?;
        let now = SystemTime::now();
        let mut reported: Option<Window> = None;
        for ((limit, _, per_route), (count, left_ms)) in windows.iter().zip(&hit.windows) {
            let reset = now + Duration::from_millis(*left_ms);
            let window = Window {
                limit: *limit,
                remaining: limit.saturating_sub(*count),
                reset_unix: reset.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            };
            if !hit.counted && count >= limit {
                return Ok(Err(Rejection {
                    window: Some(Window {
                        remaining: 0,
                        ..window
                    }),
                    per_route: *per_route,
                }));
            }
            if reported.is_none_or(|r| window.remaining < r.remaining) {
                reported = Some(window);
            }
        }
        Ok(Ok(reported))
    }

    fn check_local(&self, client: &str, route: &str) -> Result<Option<Window>, Rejection> {
        let now = Instant::now();
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if counters.len() > 100_000 {
            counters.retain(|_, c| now.duration_since(c.started) < WINDOW);
        }
        let mut reported: Option<Window> = None;
        // Check every applicable window before counting, so a rejected request uses no quota.
        let mut windows = Vec::new();
        for (limit, scope, per_route) in self.windows(route) {
            let counter = counters
                .entry((client.to_owned(), scope.clone()))
                .or_insert(Counter {
                    started: now,
                    count: 0,
                });
            if now.duration_since(counter.started) >= WINDOW {
                *counter = Counter {
                    started: now,
                    count: 0,
                };
            }
            let reset =
                SystemTime::now() + (WINDOW.saturating_sub(now.duration_since(counter.started)));
            let window = Window {
                limit,
                remaining: limit.saturating_sub(counter.count + 1),
                reset_unix: reset.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            };
            if counter.count >= limit {
                return Err(Rejection {
                    window: Some(Window {
                        remaining: 0,
                        ..window
                    }),
                    per_route,
                });
            }
            windows.push((client.to_owned(), scope));
            if reported.is_none_or(|r| window.remaining < r.remaining) {
                reported = Some(window);
            }
        }
        for key in windows {
            if let Some(counter) = counters.get_mut(&key) {
                counter.count += 1;
            }
        }
        Ok(reported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default() {
        let limiter = RateLimiter::new(0, Vec::new());
        for _ in 0..1000 {
            assert!(matches!(limiter.check("a", "/api/v1/query"), Ok(None)));
        }
    }

    #[test]
    fn per_client_limit_counts_each_client_separately() {
        let limiter = RateLimiter::new(3, Vec::new());
        let remaining: Vec<u64> = (0..3)
            .map(|_| limiter.check("a", "/r").unwrap().unwrap().remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let rejected = limiter.check("a", "/r").unwrap_err();
        assert!(!rejected.per_route);
        assert_eq!(rejected.window.unwrap().limit, 3);
        assert!(
            limiter.check("b", "/r").is_ok(),
            "another client has its own window"
        );
    }

    #[test]
    fn per_route_limit_applies_to_its_route_only() {
        let limiter = RateLimiter::new(0, vec![("/api/v1/query".to_owned(), 2)]);
        assert!(limiter.check("a", "/api/v1/query").is_ok());
        assert!(limiter.check("a", "/api/v1/query").is_ok());
        let rejected = limiter.check("a", "/api/v1/query").unwrap_err();
        assert!(rejected.per_route);
        assert!(matches!(limiter.check("a", "/api/v1/stats"), Ok(None)));
    }

    #[test]
    fn a_rejected_request_uses_no_quota_of_other_windows() {
        let limiter = RateLimiter::new(5, vec![("/q".to_owned(), 1)]);
        assert!(limiter.check("a", "/q").is_ok());
        for _ in 0..10 {
            assert!(limiter.check("a", "/q").is_err());
        }
        // Four of the five per-client requests are left.
        for _ in 0..4 {
            assert!(limiter.check("a", "/other").is_ok());
        }
        assert!(limiter.check("a", "/other").is_err());
    }
}
