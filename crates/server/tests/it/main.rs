//! The server's integration tests, in one binary (one link for all of them): KATO's API and
//! its recorded golden replay, KnowledgeBeast's API, projects, vectors, concurrency and the
//! cross-site checks, over the shared harness in `support`.

mod cluster;
mod compare;
mod cross_site;
mod kato_api;
mod kato_golden;
mod kato_sessions;
mod kb_api;
mod kb_cluster;
mod kb_concurrency;
mod kb_projects;
mod kb_vectors;
mod openapi;
mod snapshots;
mod support;
