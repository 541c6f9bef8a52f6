#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t = String::from_utf8_lossy(data).into_owned();
    let _ = picojoule::resources::parse_size(&t);
    let _ = t.parse::<picojoule::ledger::Fmt>();
    let _ = picojoule::numerics::FloatFormat::parse(&t);
    let spec = picojoule::engine::arith::ArithSpec { mode: t.clone(), acc: Some(t), scope: Default::default(), policy: None, fold_weight_offset: None };
    let _ = spec.build();
});
