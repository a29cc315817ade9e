//! The pattern engine of mneme: KATO's observe / learn / predict semantics as a deterministic
//! library (see `../shared/specs/kato.md`).

pub mod config;
pub mod error;
pub mod matching;
pub mod name;
pub mod node;
pub mod predict;
pub mod pyfmt;
pub mod redis_float;
pub mod session;
pub mod session_config;
pub mod types;
