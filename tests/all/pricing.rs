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
        for (id, ((_, counts), layer)) in out.ledger.layers().zip(&priced.layers).enumerate() {
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
                    let fp = out.ledger.footprint_at(id);
                    let p = picojoule::hardware::price::unit_price(&hw.model, &fp, &key).unwrap();
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

/// A batch maps a layer's matrix products of its samples as one pass: the weights of a
/// projection may be read once per batch instead of once per image. Execution and counts do not
/// change; the mapped memory energy falls, and a batch that does not divide the images leaves
/// one smaller pass.
#[test]
fn a_batch_maps_the_samples_matrix_products_as_one_pass() {
    let dir = super::util::temp_dir("batch-passes");
    super::util::write(
        &dir,
        "pvt.ron",
        "Pvt(name: \"pvt-tiny\", embed_dims: [16, 32, 48, 64], num_heads: [1, 2, 3, 4], \
         mlp_ratios: [4, 4, 4, 4], depths: [1, 1, 1, 1], attention: Sra(sr_ratios: [4, 2, 1, 1]), \
         image_size: 32, weights: Seeded(7))",
    );
    let path = super::util::write(
        &dir,
        "batch.ron",
        "Scenario(name: \"batch\", seed: 1, hardware: \"horowitz45\", input: SeededImage(size: 32), \
         tokens: 6, runs: [(model: \"pvt.ron\", label: Some(\"b1\")), \
         (model: \"pvt.ron\", label: Some(\"b3\"), batch: Some(3)), \
         (model: \"pvt.ron\", label: Some(\"b4\"), batch: Some(4))])",
    );
    let sc = LoadedScenario::load(&path).unwrap();
    let hw = Hardware::load("horowitz45").unwrap();
    let outputs = exec::execute(&sc, &Default::default()).unwrap();
    let priced: Vec<_> = outputs
        .iter()
        .map(|o| price(&o.ledger, &hw.model))
        .collect();
    let passes = |o: &exec::RunOutput| -> Vec<(picojoule::ledger::Work, u64)> {
        let mut v: Vec<_> = o
            .ledger
            .layers()
            .flat_map(|(_, c)| c.4.iter().map(|(w, n)| (*w, *n)))
            .filter(|(w, _)| matches!(w, picojoule::ledger::Work::Matmul { .. }))
            .collect();
        v.sort();
        v
    };
    let (b1, b3, b4) = (
        passes(&outputs[0]),
        passes(&outputs[1]),
        passes(&outputs[2]),
    );
    assert!(!b1.is_empty());
    // Six images: batch 1 files six passes per shape, batch 3 two passes of three images'
    // rows, batch 4 one of four and one of two.
    let rows = |w: &picojoule::ledger::Work| match w {
        picojoule::ledger::Work::Matmul { n, .. } => *n,
        _ => 0,
    };
    for (w, n) in &b1 {
        assert_eq!(*n % 6, 0, "{w:?}");
        let per = n / 6;
        let find = |v: &[(picojoule::ledger::Work, u64)], m: u64| {
            v.iter()
                .find(|(x, _)| {
                    rows(x) == m * rows(w)
                        && std::mem::discriminant(x) == std::mem::discriminant(w)
                        && format!("{x:?}").replace(&format!("n: {}", rows(x)), "")
                            == format!("{w:?}").replace(&format!("n: {}", rows(w)), "")
                })
                .map(|(_, k)| *k)
        };
        assert_eq!(find(&b3, 3), Some(2 * per), "{w:?}");
        assert_eq!(find(&b4, 4), Some(per), "{w:?}");
        assert_eq!(find(&b4, 2), Some(per), "{w:?}");
    }
    // The same execution and counts; less mapped memory energy.
    for (o, p) in outputs.iter().zip(&priced).skip(1) {
        assert_eq!(
            o.ledger.totals().0,
            outputs[0].ledger.totals().0,
            "{}",
            o.label
        );
        assert!(p.memory_range.mapped_pj <= p.memory_range.upper_pj);
        assert!(
            p.memory_range.mapped_pj < priced[0].memory_range.mapped_pj,
            "{}: {} vs {}",
            o.label,
            p.memory_range.mapped_pj,
            priced[0].memory_range.mapped_pj
        );
        assert!(p.memory_range.lower_pj <= p.memory_range.mapped_pj);
    }
}
