//! KATO's request parsing: any JSON body read as an observation answers the observation or
//! FastAPI's list of problems, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = mneme_server::kato::request::observation(Some(value));
});
