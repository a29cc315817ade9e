//! The pattern engine of mneme: KATO's observe / learn / predict semantics as a deterministic
//! library (see `../shared/specs/kato.md`). Not built yet: this crate reserves its place in the
//! workspace layering (`cli -> server -> app -> {kb, seq} -> store`).
