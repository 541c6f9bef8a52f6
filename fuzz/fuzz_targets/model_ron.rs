#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = picojoule::error::parse_ron::<picojoule::models::ModelDesc>(std::path::Path::new("f.ron"), &text) {
        let _ = d.validate();
    }
});
