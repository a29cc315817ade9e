//! Vector search for mneme (work in progress).
