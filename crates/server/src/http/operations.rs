//! KATO's operational endpoints (`/concurrency`, `/cache/stats`, `/cache/invalidate`,
//! `/distributed-stm/stats`, `/connection-pools`), answered in KATO's shapes with mneme's own
//! figures, and the in-flight request count behind `/concurrency`.
//!
//! KATO's documented client raises on any 404, so each of these answers 200 whatever mneme
//! has behind it; where mneme has no such component (a Redis pattern cache, Redis-stream STM)
//! the answer is KATO's own `disabled` form with the reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::ServerState;
use super::common::to_json;
use crate::error::ApiError;
use crate::lax::{self, Dialect};
use mneme_app::time::iso_utc_offset;

/// Requests being answered now, and the most at once since start.
#[derive(Debug, Default)]
pub struct InFlight {
    current: AtomicUsize,
    peak: AtomicUsize,
}

/// Counts one request as in flight until dropped (also when its future is cancelled).
pub struct InFlightGuard<'a>(&'a InFlight);

impl InFlight {
    pub fn enter(&self) -> InFlightGuard<'_> {
        let now = self.current.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
        InFlightGuard(self)
    }

    /// (current, peak).
    pub fn figures(&self) -> (usize, usize) {
        (
            self.current.load(Ordering::Relaxed),
            self.peak.load(Ordering::Relaxed),
        )
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::Relaxed);
    }
}

fn timestamp() -> String {
    iso_utc_offset(SystemTime::now())
}

#[derive(Serialize, ToSchema)]
pub struct ConcurrencyFigure {
    pub concurrent_requests: usize,
    pub utilization_percent: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ConcurrencyLimits {
    pub per_worker: u64,
    pub warning_threshold: u64,
    pub critical_threshold: u64,
    pub total_capacity: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ConcurrencyConfiguration {
    pub workers: u64,
    pub backlog: u64,
    #[schema(value_type = String)]
    pub max_requests: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Recommendation {
    #[schema(value_type = String)]
    pub level: &'static str,
    pub message: String,
}

/// `GET /concurrency`: KATO's concurrency report.
#[derive(Serialize, ToSchema)]
pub struct Concurrency {
    /// `healthy`, `warning` or `critical`.
    #[schema(value_type = String)]
    pub status: &'static str,
    pub current: ConcurrencyFigure,
    pub peak: ConcurrencyFigure,
    pub limits: ConcurrencyLimits,
    pub configuration: ConcurrencyConfiguration,
    pub recommendations: Vec<Recommendation>,
    pub timestamp: String,
}

/// KATO's report for `current` and `peak` requests in flight against `limit`: thresholds at
/// 80 % and 95 % (rounded down), its status and its recommendation texts.
pub fn concurrency_report(current: usize, peak: usize, limit: u64) -> Concurrency {
    let limit = limit.max(1);
    let percent = |n: usize| (n as f64 / limit as f64 * 100.0) as u64;
    let warning = (limit as f64 * 0.8) as u64;
    let critical = (limit as f64 * 0.95) as u64;
    let status = if current as u64 >= critical {
        "critical"
    } else if current as u64 >= warning {
        "warning"
    } else {
        "healthy"
    };
    let mut recommendations = Vec::new();
    if peak as f64 >= limit as f64 * 0.95 {
        recommendations.push(Recommendation {
            level: "critical",
            message: format!(
                "Peak concurrent requests ({peak}) exceeded 95% of per-worker limit ({limit}). \
                 Increase --workers (currently 1) or --limit-concurrency (currently {limit})."
            ),
        });
    } else if peak as f64 >= limit as f64 * 0.8 {
        recommendations.push(Recommendation {
            level: "warning",
            message: format!(
                "Peak concurrent requests ({peak}) exceeded 80% of per-worker limit ({limit}). \
                 Consider increasing --workers or --limit-concurrency for headroom."
            ),
        });
    }
    if current as f64 >= limit as f64 * 0.9 {
        recommendations.push(Recommendation {
            level: "urgent",
            message: format!(
                "Currently at {current} concurrent requests ({}% of limit). System is under \
                 heavy load. New requests may be dropped or timeout.",
                percent(current)
            ),
        });
    }
    if recommendations.is_empty() {
        recommendations.push(Recommendation {
            level: "info",
            message: format!(
                "Concurrency is healthy. Peak {peak}/{limit} ({}%).",
                percent(peak)
            ),
        });
    }
    Concurrency {
        status,
        current: ConcurrencyFigure {
            concurrent_requests: current,
            utilization_percent: percent(current),
        },
        peak: ConcurrencyFigure {
            concurrent_requests: peak,
            utilization_percent: percent(peak),
        },
        limits: ConcurrencyLimits {
            per_worker: limit,
            warning_threshold: warning,
            critical_threshold: critical,
            total_capacity: limit,
        },
        configuration: ConcurrencyConfiguration {
            workers: 1,
            backlog: BACKLOG,
            max_requests: "unlimited",
        },
        recommendations,
        timestamp: timestamp(),
    }
}

/// The listen backlog of `mneme serve` (tokio's `TcpListener::bind`).
const BACKLOG: u64 = 1024;

/// `GET /concurrency`: requests in flight (this one included) against the reference limit
/// (`KATO_LIMIT_CONCURRENCY`, default 100; mneme queues past it rather than dropping).
pub async fn concurrency(State(state): State<Arc<ServerState>>) -> Response {
    let (current, peak) = state.in_flight.figures();
    to_json(&concurrency_report(
        current,
        peak,
        state.config.concurrency_limit,
    ))
}

const NO_PATTERN_CACHE: &str = "Cache manager not available: mneme holds every pattern of a \
    loaded node in memory, so there is no separate pattern cache";

/// A component mneme does not have, as KATO reports it.
#[derive(Serialize, ToSchema)]
pub struct Disabled {
    #[schema(value_type = String)]
    pub status: &'static str,
    #[schema(value_type = Option<String>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// `GET /cache/stats`.
#[derive(Serialize, ToSchema)]
pub struct CacheStats {
    pub cache_performance: Disabled,
    pub cache_health: Disabled,
    pub timestamp: String,
}

/// `GET /cache/stats`: KATO's `disabled` answer (mneme has no Redis pattern cache).
pub async fn cache_stats() -> Response {
    to_json(&CacheStats {
        cache_performance: Disabled {
            status: "disabled",
            reason: Some(NO_PATTERN_CACHE),
        },
        cache_health: Disabled {
            status: "disabled",
            reason: None,
        },
        timestamp: timestamp(),
    })
}

lax::request! {
    /// The session whose cached patterns KATO would drop.
    pub struct InvalidateQuery {
        /// Only this session's entries (all when absent).
        pub session_id: Lax<lax::kato::OptStr>,
    }
}

/// `POST /cache/invalidate`: the counts are null (nothing is cached).
#[derive(Serialize, ToSchema)]
pub struct CacheInvalidated {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub patterns_invalidated: Option<u64>,
    pub symbols_invalidated: Option<u64>,
    pub session_id: Option<String>,
    #[schema(value_type = String)]
    pub reason: &'static str,
    pub timestamp: String,
}

/// `POST /cache/invalidate?session_id=`: nothing to drop; KATO's `disabled` answer.
pub async fn cache_invalidate(RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    lax::query::<InvalidateQuery>(query.as_deref().unwrap_or(""))
        .map_err(|problems| ApiError::invalid(Dialect::Kato, &problems))?;
    Ok(to_json(&CacheInvalidated {
        status: "disabled",
        patterns_invalidated: None,
        symbols_invalidated: None,
        session_id: None,
        reason: NO_PATTERN_CACHE,
        timestamp: timestamp(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ProcessorInfo {
    /// Pattern nodes loaded on this server.
    pub total_active_processors: usize,
}

/// `GET /distributed-stm/stats`: the null fields are KATO's figures of a component mneme
/// does not have.
#[derive(Serialize, ToSchema)]
pub struct DistributedStmStats {
    #[schema(value_type = String)]
    pub status: &'static str,
    pub distributed_stm_enabled: bool,
    pub performance_stats: Option<Value>,
    pub processor_info: ProcessorInfo,
    pub expected_improvements: Option<Value>,
    #[schema(value_type = String)]
    pub reason: &'static str,
    pub error: Option<String>,
    pub timestamp: String,
}

/// `GET /distributed-stm/stats`: KATO's `disabled` answer; in cluster mode the reason says
/// where the short-term memories live instead.
pub async fn distributed_stm_stats(State(state): State<Arc<ServerState>>) -> Response {
    let reason = if state.kato.patterns().shared_status().is_some() {
        "No processors with distributed STM available: in cluster mode every session, its \
         short-term memory included, lives in Redis and is shared by all nodes"
    } else {
        "No processors with distributed STM available"
    };
    to_json(&DistributedStmStats {
        status: "disabled",
        distributed_stm_enabled: false,
        performance_stats: None,
        processor_info: ProcessorInfo {
            total_active_processors: state.kato.patterns().loaded().len(),
        },
        expected_improvements: None,
        reason,
        error: None,
        timestamp: timestamp(),
    })
}

/// The health of one store.
#[derive(Serialize, ToSchema)]
pub struct StoreHealth {
    pub healthy: bool,
    /// Seconds since the Unix epoch.
    pub last_check: f64,
    pub error_count: u64,
    pub last_error: Option<String>,
    /// Always null (not measured).
    pub response_time_ms: Option<f64>,
}

/// One store's connection, as KATO's pool statistics name it.
#[derive(Serialize, ToSchema)]
pub struct PoolState {
    /// `redb`, `postgres` or `redis`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: &'static str,
    /// `connected` or `error`.
    #[schema(value_type = String)]
    pub status: &'static str,
}

/// `GET /connection-pools`: keyed by store (`embedded`, or `postgres` and `redis`).
#[derive(Serialize, ToSchema)]
pub struct ConnectionPools {
    /// `healthy`, or `degraded` when a store is not.
    #[schema(value_type = String)]
    pub status: &'static str,
    pub health: std::collections::BTreeMap<String, StoreHealth>,
    pub pool_statistics: std::collections::BTreeMap<String, PoolState>,
    /// Always empty.
    pub connection_optimization: Value,
    /// Always empty.
    pub performance_improvements: Value,
    pub error: Option<String>,
    pub timestamp: String,
}

/// `GET /connection-pools`: the health of the stores this node uses, in KATO's shape: the
/// embedded store alone, or PostgreSQL and Redis in cluster mode.
pub async fn connection_pools(State(state): State<Arc<ServerState>>) -> Response {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let entry = |error: Option<String>| StoreHealth {
        healthy: error.is_none(),
        last_check: now,
        error_count: u64::from(error.is_some()),
        last_error: error,
        response_time_ms: None,
    };
    let pool = |kind: &'static str, healthy: bool| PoolState {
        kind,
        status: if healthy { "connected" } else { "error" },
    };
    let stores: Vec<(&str, &'static str, Option<String>)> =
        match state.kato.patterns().shared_status() {
            Some(shared) => vec![
                ("postgres", "postgres", shared.degraded),
                ("redis", "redis", state.kato.sessions().store_outage()),
            ],
            None => vec![("embedded", "redb", state.kato.patterns().failure())],
        };
    let healthy = stores.iter().all(|(_, _, error)| error.is_none());
    let mut health = std::collections::BTreeMap::new();
    let mut pools = std::collections::BTreeMap::new();
    for (name, kind, error) in stores {
        pools.insert(name.to_owned(), pool(kind, error.is_none()));
        health.insert(name.to_owned(), entry(error));
    }
    to_json(&ConnectionPools {
        status: if healthy { "healthy" } else { "degraded" },
        health,
        pool_statistics: pools,
        connection_optimization: json!({}),
        performance_improvements: json!({}),
        error: None,
        timestamp: timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::concurrency_report;

    #[test]
    fn concurrency_follows_katos_thresholds_and_texts() {
        let calm = concurrency_report(1, 3, 100);
        assert_eq!(calm.status, "healthy");
        assert_eq!(
            (
                calm.limits.warning_threshold,
                calm.limits.critical_threshold
            ),
            (80, 95)
        );
        assert_eq!(calm.recommendations.len(), 1);
        assert_eq!(calm.recommendations[0].level, "info");
        assert_eq!(
            calm.recommendations[0].message,
            "Concurrency is healthy. Peak 3/100 (3%)."
        );
        let busy = concurrency_report(85, 90, 100);
        assert_eq!(busy.status, "warning");
        assert_eq!(busy.recommendations[0].level, "warning");
        let full = concurrency_report(96, 99, 100);
        assert_eq!(full.status, "critical");
        let levels: Vec<_> = full.recommendations.iter().map(|r| r.level).collect();
        assert_eq!(levels, ["critical", "urgent"]);
        assert_eq!(full.current.utilization_percent, 96);
    }
}
