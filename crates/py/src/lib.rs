//! `mneme._native`: the Rust half of mneme's Python package.
//!
//! Two classes, both used through the pure-Python packages beside them (`python/`):
//! `Kb`, the knowledge base behind `knowledgebeast.KnowledgeBase` and the `KnowledgeBeast`
//! facade, and `Kato`, KATO's REST API in process (the server's own `server::kato::Api`),
//! behind `mneme.KATOClient` when it has no `base_url`.
//!
//! Every call that does real work runs with the GIL released (`Python::detach`), so Python
//! threads run it in parallel, except the ranking of a keyword query, which takes less time
//! than taking the GIL back costs under contention; engine errors become the Python exceptions KnowledgeBeast and
//! KATO raise (`ValueError` for a bad query, `FileNotFoundError` for a missing path, ...).
//! Nothing here panics across the boundary: pyo3 turns a panic into `PanicException`, and the
//! engines return errors rather than panic.

use pyo3::prelude::*;

mod errors;
mod kato;
mod kb;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<kb::Kb>()?;
    m.add_class::<kato::Kato>()?;
    m.add(
        "StoreBusyError",
        m.py().get_type::<errors::StoreBusyError>(),
    )?;
    m.add("VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
