use picojoule::exec;
use picojoule::hardware::{Hardware, price};
use picojoule::ledger::{FP32, Ledger, Op};
use picojoule::scenario::LoadedScenario;

use super::util::repo_path;

#[test]
fn report_energy_is_exactly_the_sum_of_count_times_price() {
    let sc = LoadedScenario::load(&repo_path("scenarios/quickstart.ron")).unwrap();
    let hw = Hardware::load("horowitz45").unwrap();
    let outputs = exec::execute(&sc, &Default::default()).unwrap();
    for out in &outputs {
        let priced = price(&out.ledger, &hw.model);
        let mut total = 0.0;
        let mut per_layer_sum = 0.0;
        for ((_, counts), layer) in out.ledger.layers().zip(&priced.layers) {
            let mut layer_total = 0.0;
            for (key, &n) in counts.iter() {
                if let Some(p) = picojoule::hardware::price::unit_price(&hw.model, &out.ledger, key)
                {
                    layer_total += n as f64 * p.nominal;
                }
            }
            assert_eq!(layer_total, layer.energy_pj, "{}", layer.name);
            per_layer_sum += layer.energy_pj;
            total += layer_total;
        }
        assert_eq!(total, priced.energy_pj);
        assert_eq!(per_layer_sum, priced.energy_pj);
    }
}

#[test]
fn a_ledger_prices_the_same_after_a_json_round_trip() {
    let sc = LoadedScenario::load(&repo_path("scenarios/quickstart.ron")).unwrap();
    let outputs = exec::execute(&sc, &Default::default()).unwrap();
    let hw = Hardware::load("jouppi7").unwrap();
    let json = serde_json::to_string(&outputs[1].ledger).unwrap();
    let back: Ledger = serde_json::from_str(&json).unwrap();
    assert_eq!(
        price(&back, &hw.model),
        price(&outputs[1].ledger, &hw.model)
    );
}

#[test]
fn paper_convention_excludes_memory_with_a_reason_and_counts_mac_at_4_6_pj() {
    let hw = Hardware::load("paper45").unwrap();
    let mut l = Ledger::new();
    let id = l.layer("x");
    l.at(id).add(Op::Mac, FP32, 10);
    l.at(id).add(Op::Ac, FP32, 10);
    l.at(id)
        .mem(Op::Read, FP32, picojoule::ledger::TensorClass::Weight, 64);
    let p = price(&l, &hw.model);
    assert!((p.energy_pj - (46.0 + 9.0)).abs() < 1e-9);
    assert_eq!(p.unpriced.len(), 1);
    assert!(p.unpriced[0].excluded);
}
