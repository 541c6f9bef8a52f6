//! EcoFormer's PVTv2 energy table (ecoformer.md section 3), from an execution of PVTv2-B0.

use picojoule::convention::{Convention, apply};
use picojoule::ledger::Op;
use picojoule::reproduce::ecoformer::ecoformer_pvtv2_table;

use super::util::{repo_path, temp_dir, write};

fn within(measured: f64, published: f64, pct: f64) -> bool {
    (measured - published).abs() <= published * pct / 100.0
}

#[test]
fn pvtv2_b0_ecoformer_paper_counts_match_the_published_table() {
    let dir = temp_dir("repro-pvt");
    let sc = write(
        &dir,
        "b0.ron",
        &format!(
            "Scenario(name: \"b0\", seed: 42, hardware: \"horowitz45\", input: SeededImage(size: 224), tokens: 1, runs: [(model: \"{}\"), (model: \"{}\")])",
            repo_path("models/pvtv2-b0-msa.ron").display(),
            repo_path("models/pvtv2-b0-ecoformer.ron").display()
        ),
    );
    let sc = picojoule::scenario::LoadedScenario::load(&sc).unwrap();
    let runs = picojoule::exec::execute(&sc, &Default::default()).unwrap();
    let (msa, eco) = (
        apply(Convention::EcoformerPaper, &runs[0].ledger),
        apply(Convention::EcoformerPaper, &runs[1].ledger),
    );
    // Every compute count is either an mmcv-hooked MAC, a conv bias, an attention step, or free.
    for v in [&msa, &eco] {
        assert!(
            v.lines
                .iter()
                .all(|l| l.label != "other multiplies" && l.label != "other adds"),
            "{:?}",
            v.lines
        );
    }
    // README: 0.54 B mul, 0.56 B add; derived MSA baseline 2.016 / 1.993 B.
    assert!(within(eco.mul() as f64 / 1e9, 0.54, 1.0), "{}", eco.mul());
    assert!(within(eco.add() as f64 / 1e9, 0.56, 1.0), "{}", eco.add());
    assert!(within(msa.mul() as f64 / 1e9, 2.016, 1.0), "{}", msa.mul());
    assert!(within(msa.add() as f64 / 1e9, 1.993, 1.0), "{}", msa.add());
    // Exactly the authors' rules: mmcv FLOPs (conv taps incl. padding + conv bias, Linear
    // in x out, LayerNorm 2 numel) + msa/ecoformer formulas, summed by hand from the shapes,
    // less the Linear products picojoule does not execute because their input is exactly zero
    // (GELU outputs that underflow to 0 before fc2): dense_synop - mac of the Linear layers.
    for (run, v, closed) in [
        (&runs[1], &eco, (535_392_840u64, 564_786_176u64)),
        (&runs[0], &msa, (2_015_865_904, 1_993_315_712)),
    ] {
        let gated: u64 = run
            .ledger
            .layers()
            .map(|(_, c)| {
                c.op_total(Op::DenseSynop)
                    .saturating_sub(c.op_total(Op::Mac))
            })
            .sum();
        assert_eq!((v.mul() + gated, v.add() + gated), closed, "gated {gated}");
        assert!(gated * 10_000 < closed.0, "gated {gated}");
    }

    let t = picojoule::reproduce::ecoformer::table_from_runs(&runs).unwrap();
    let red = t
        .rows
        .iter()
        .find(|r| {
            r.quantity == "pvtv2-b0 energy reduction, EcoFormer vs MSA"
                && r.convention.starts_with("ecoformer-paper")
        })
        .unwrap();
    assert!((red.measured - 73.1).abs() < 0.5, "{}", red.measured);
    assert!(t.markdown().contains("pvtv2-b0-ecoformer #Mul"));
    let _ = ecoformer_pvtv2_table; // the six-model form runs in `picojoule reproduce`
}
