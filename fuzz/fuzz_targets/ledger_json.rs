#![no_main]
use libfuzzer_sys::fuzz_target;

// `ledger.json` as `picojoule price` reads it: the saved runs, priced and reported.
fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((sc, outputs)) =
        picojoule::exec::saved::from_json(std::path::Path::new("ledger.json"), &text)
    {
        let hw = picojoule::hardware::Hardware::load("horowitz45").unwrap();
        for o in &outputs {
            let _ = picojoule::hardware::price(&o.ledger, &hw.model);
        }
        let rep = picojoule::report::build(&sc, &hw, &outputs);
        let _ = picojoule::report::table::render(&rep, picojoule::report::Format::Json);
    }
});
