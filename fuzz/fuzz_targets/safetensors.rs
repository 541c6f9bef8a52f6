#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picojoule::weights::safetensors_from_bytes("fuzz", data);
});
