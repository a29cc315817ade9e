//! The loaders of the files and records mneme writes (the catalog, the vector table and the
//! pending vectors of an index, cluster mode's scans), fed valid headers and checksums around
//! fuzzed contents where they have them: they answer, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, contents)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    match selector % 4 {
        0 => {
            mneme_kb::fuzzing::load_catalog(dir.path(), contents);
        }
        1 => {
            mneme_kb::fuzzing::load_vectors(dir.path(), contents);
        }
        2 => {
            mneme_kb::fuzzing::load_pending(dir.path(), contents);
        }
        _ => {
            mneme_kb::fuzzing::decode_scan(contents);
        }
    }
});
