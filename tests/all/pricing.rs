use picojoule::exec;
use picojoule::hardware::{Hardware, price};
use picojoule::ledger::{FP32, Ledger, Op, TensorClass};
use picojoule::scenario::LoadedScenario;

use super::util::repo_path;

#[test]
fn report_energy_is_exactly_the_sum_of_its_lines_and_untraced_lines_are_count_times_price() {
    let sc = LoadedScenario::load(&repo_path("scenarios/quickstart.ron")).unwrap();
    let hw = Hardware::load("horowitz45").unwrap();
    let outputs = exec::execute(&sc, &Default::default()).unwrap();
    for out in &outputs {
        let priced = price(&out.ledger, &hw.model);
        let mut total = 0.0;
        for ((_, counts), layer) in out.ledger.layers().zip(&priced.layers) {
            let mut layer_total = 0.0;
            for line in &layer.lines {
                layer_total += line.energy_pj;
                let key = counts
                    .iter()
                    .map(|(k, _)| *k)
                    .find(|k| k.to_string() == line.action)
                    .unwrap();
                let traced = key.op == Op::Read
                    && key.class == Some(TensorClass::Weight)
                    && !counts.2.is_empty();
                if !traced {
                    let p = picojoule::hardware::price::unit_price(&hw.model, &out.ledger, &key)
                        .unwrap();
                    assert_eq!(
                        line.energy_pj,
                        line.count as f64 * p.nominal,
                        "{}",
                        line.action
                    );
                }
            }
            assert_eq!(layer_total, layer.energy_pj, "{}", layer.name);
            total += layer_total;
        }
        assert_eq!(total, priced.energy_pj);
        let r = &priced.memory_range;
        let memory = priced
            .by_kind
            .iter()
            .find(|(k, _)| k == "memory")
            .unwrap()
            .1;
        assert!((r.mapped_pj - memory).abs() <= 1e-9 * memory, "{r:?}");
        assert!(
            r.lower_pj <= r.mapped_pj && r.mapped_pj <= r.upper_pj,
            "{r:?}"
        );
    }
}

/// A dense model reads every weight row once per token in the same order, so the LRU distance
/// of every reread is the bytes the model reads per token: a formula checking the trace.
#[test]
fn a_dense_model_rereads_each_weight_row_at_the_distance_of_one_token() {
    let sc = LoadedScenario::load(&repo_path("scenarios/quickstart.ron")).unwrap();
    let outputs = exec::execute(&sc, &Default::default()).unwrap();
    let out = outputs
        .iter()
        .find(|o| o.label.ends_with("non_spiking"))
        .unwrap();
    let traced: u64 = out.ledger.layers().map(|(_, c)| c.2.total()).sum();
    let per_token = traced / out.tokens as u64;
    assert_eq!(traced, per_token * out.tokens as u64);
    let edge = picojoule::ledger::reuse::bucket(per_token);
    let mut checked = 0;
    for (name, c) in out.ledger.layers() {
        if c.2.is_empty() || name.contains("emb") {
            continue;
        }
        assert_eq!(
            c.2.by_distance.keys().collect::<Vec<_>>(),
            [&edge],
            "{name}"
        );
        assert_eq!(c.2.cold * out.tokens as u64, c.2.total(), "{name}");
        checked += 1;
    }
    assert!(checked > 10, "{checked}");
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
