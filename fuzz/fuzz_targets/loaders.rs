//! The loaders of the files mneme writes (the catalog and the vector table of an index), fed
//! valid headers and checksums around fuzzed contents: they answer, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, contents)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    if selector % 2 == 0 {
        mneme_kb::fuzzing::load_catalog(dir.path(), contents);
    } else {
        mneme_kb::fuzzing::load_vectors(dir.path(), contents);
    }
});
