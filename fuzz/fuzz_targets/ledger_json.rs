#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = serde_json::from_slice::<picojoule::ledger::Ledger>(data) {
        let hw = picojoule::hardware::Hardware::load("horowitz45").unwrap();
        let _ = picojoule::hardware::price(&l, &hw.model);
    }
});
