//! The pattern engine of mneme: KATO's observe / learn / predict semantics as a deterministic
//! library (see `../shared/specs/kato.md`).

pub mod matching;
pub mod name;
