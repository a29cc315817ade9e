//! The HTTP front of mneme. `kato` holds KATO's REST API as plain functions from a request
//! (method, path, query, JSON body) to a status and a JSON body, so that the same code serves
//! HTTP and in-process callers (tests, the CLI).

pub mod error;
pub mod http;
pub mod kato;
pub mod lax;
pub mod mcp;
