//! The HTTP front of mneme: KnowledgeBeast's and KATO's REST APIs on one axum router. Not built
//! yet: this crate reserves its place in the workspace layering.
