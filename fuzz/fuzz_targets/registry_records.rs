//! The project registry's records (`registry.redb`, or `mneme_registry` in cluster mode)
//! decoded from fuzzed bytes as each kind: they answer, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mneme_app::projects::fuzzing::decode_records(data);
});
