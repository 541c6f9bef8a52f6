#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("picojoule-fuzz-{}.nir", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        use picojoule::models::nir::{Convention, Nir, read_nir};
        if let Ok((cfg, store)) = read_nir(&path, "fuzz", Convention::Snntorch, 1e-4) {
            let _ = Nir::new(cfg, &store);
        }
    }
});
