//! Wires mneme's engines to their storage and to one configuration tree.
//!
//! `app` owns what the engines deliberately do not: configuration (files, environment),
//! clocks, and the counters a running service reports. The CLI and the HTTP server both go
//! through it, so that they behave the same.

pub mod bench;
pub mod config;
pub mod embedding;
mod knowledge;
pub mod limits;
pub mod patterns;
pub mod projects;
pub mod running;
pub mod sessions;
pub mod time;

pub use config::{Config, ConfigError, EmbeddingModel, FlagValue, KbSettings, LogLevel};
pub use knowledge::{Knowledge, QueryStats, SharedIndex, default_ranking, embedder, kb_config};
