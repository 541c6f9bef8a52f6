#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("picojoule-fuzz-{}.pt", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = picojoule::weights::load_pth(&path);
    }
});
