use picojoule::engine::lif::LifConfig;
use picojoule::engine::linear::Linear;
use picojoule::engine::{Arith, SpikeTrain};
use picojoule::ledger::{Counts, Ledger, Op};
use picojoule::models::spikegpt::{Config, SpikeGpt, Variant, WeightsSpec, seeded_weights};

fn tiny(variant: Variant) -> (Config, SpikeGpt) {
    let cfg = Config {
        name: "t".into(),
        n_layer: 2,
        n_embd: 16,
        vocab_size: 12,
        ffn_mult: 4,
        variant,
        binary_embedding: true,
        rescale_every: None,
        lif: LifConfig::default(),
        layer_norm_eps: 1e-5,
        weights: WeightsSpec::Seeded(5),
    };
    let m = SpikeGpt::new(cfg.clone(), &seeded_weights(&cfg, 5)).unwrap();
    (cfg, m)
}

/// A hand-computable network: 3 inputs -> 2 LIF neurons (tau 2, threshold 1, hard reset),
/// weights W = [[2, 0, 1], [0.5, 0.5, 0.5]], event-driven.
#[test]
fn hand_computed_tiny_network_counts_and_spikes() {
    let w = Linear::from_out_in(&[2.0, 0.0, 1.0, 0.5, 0.5, 0.5], 2, 3);
    let lif = LifConfig::default();
    let arith = Arith::Exact;
    let mut v = [0.0f32; 2];
    let mut c = Counts::default();
    let inputs: [&[usize]; 3] = [&[0], &[1, 2], &[0, 1, 2]];
    let mut out = SpikeTrain::new(2);
    let mut fired = vec![];
    for events in inputs {
        let mut s = SpikeTrain::new(3);
        for &i in events {
            s.fire(i);
        }
        let mut y = [0.0f32; 2];
        w.forward_events(&s, &mut y, &arith, &mut c);
        lif.step(&mut v, &y, &mut out, &arith, &mut c);
        fired.push(out.indices.clone());
    }
    // t0: y = [2, 0.5]     H = [1, 0.25]   -> neuron 0 fires (H >= 1), V = [0, 0.25]
    // t1: y = [1, 1]       H = [0.5, 0.625]-> none,                    V = [0.5, 0.625]
    // t2: y = [3, 1.5]     H = [1.75, 1.0625] -> both fire,            V = [0, 0]
    assert_eq!(fired, vec![vec![0], vec![], vec![0, 1]]);
    // ACs = input events x fan-out = (1 + 2 + 3) x 2.
    assert_eq!(c.op_total(Op::Ac), 12);
    assert_eq!(c.op_total(Op::Synop), 12);
    assert_eq!(c.op_total(Op::Mac), 0);
    assert_eq!(c.op_total(Op::NeuronUpdate), 6);
    assert_eq!(c.op_total(Op::Spike), 3);
    assert_eq!(c.op_total(Op::DenseSynop), 18);
    assert_eq!(v, [0.0, 0.0]);
}

#[test]
fn spike_driven_acs_equal_input_spikes_times_fan_out() {
    let (cfg, m) = tiny(Variant::SpikeDriven);
    let arith = Arith::Exact;
    let mut st = m.new_state();
    let mut l = m.new_ledger(&arith);
    let d = cfg.n_embd as u64;
    let h = cfg.ffn_hidden() as u64;
    let tokens = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
    let mut emb_spikes = vec![];
    let mut lif1_spikes = vec![];
    for &t in &tokens {
        let before_emb = l.subtree("emb").op_total(Op::Spike);
        let before_lif1 = l.subtree("blocks.0.lif1").op_total(Op::Spike);
        m.step(t, &mut st, &arith, &mut l);
        emb_spikes.push(l.subtree("emb").op_total(Op::Spike) - before_emb);
        lif1_spikes.push(l.subtree("blocks.0.lif1").op_total(Op::Spike) - before_lif1);
    }
    // Each projection sees this token's spikes and the previous token's (token shift).
    let shifted = |s: &[u64]| s.iter().sum::<u64>() + s[..s.len() - 1].iter().sum::<u64>();
    assert_eq!(
        l.subtree("blocks.0.att.key").op_total(Op::Ac),
        shifted(&emb_spikes) * d
    );
    assert_eq!(
        l.subtree("blocks.0.att.value").op_total(Op::Ac),
        shifted(&emb_spikes) * d
    );
    assert_eq!(
        l.subtree("blocks.0.ffn.key").op_total(Op::Ac),
        shifted(&lif1_spikes) * h
    );
    assert_eq!(
        l.subtree("blocks.0.ffn.receptance").op_total(Op::Ac),
        shifted(&lif1_spikes) * d
    );
    assert_eq!(l.subtree("blocks.0.att.key").op_total(Op::Mac), 0);
}

#[test]
fn dense_projections_do_in_times_out_macs_per_token() {
    let (cfg, m) = tiny(Variant::NonSpiking);
    let arith = Arith::Exact;
    let mut st = m.new_state();
    let mut l = m.new_ledger(&arith);
    let n = 7u64;
    for t in 0..n as usize {
        m.step(t % cfg.vocab_size, &mut st, &arith, &mut l);
    }
    let d = cfg.n_embd as u64;
    // Dense synaptic operations are in x out per token; executed MACs skip exact-zero inputs
    // (the token shift of the first token gives some), so they are a multiple of fan-out.
    for layer in [
        "blocks.0.att.key",
        "blocks.1.att.receptance",
        "blocks.1.ffn.receptance",
    ] {
        let c = l.subtree(layer);
        assert_eq!(c.op_total(Op::DenseSynop), d * d * n, "{layer}");
        assert!(
            c.op_total(Op::Mac) <= d * d * n && c.op_total(Op::Mac) > d * d * (n - 1),
            "{layer}"
        );
        assert_eq!(c.op_total(Op::Mac) % d, 0, "{layer}");
    }
    // The head reads the final layer norm's output, which has no exact zeros.
    assert_eq!(
        l.subtree("head").op_total(Op::Mac),
        d * cfg.vocab_size as u64 * n
    );
    // The value projection after ReLU^2 skips zero inputs: effective <= dense.
    let v = l.subtree("blocks.0.ffn.value");
    assert!(v.op_total(Op::Mac) < v.op_total(Op::DenseSynop));
    assert_eq!(v.op_total(Op::Mac), v.op_total(Op::EffectiveMac));
}

#[test]
fn per_layer_counts_sum_to_the_totals() {
    let (_, m) = tiny(Variant::Reference);
    let arith = Arith::Exact;
    let mut st = m.new_state();
    let mut l = m.new_ledger(&arith);
    for t in 0..5 {
        m.step(t, &mut st, &arith, &mut l);
    }
    let totals = l.totals();
    for op in Op::ALL {
        let sum: u64 = l.layers().map(|(_, c)| c.op_total(op)).sum();
        assert_eq!(sum, totals.op_total(op), "{op}");
    }
}

#[test]
fn membrane_state_is_carried_across_tokens() {
    // The same token twice gives different spikes when the membrane keeps its charge.
    let (_, m) = tiny(Variant::Reference);
    let arith = Arith::Exact;
    let mut st = m.new_state();
    let mut l = Ledger::new();
    let mut l2 = m.new_ledger(&arith);
    let _ = &mut l;
    m.step(2, &mut st, &arith, &mut l2);
    let first = l2.clone();
    m.step(2, &mut st, &arith, &mut l2);
    let second_only: u64 =
        l2.totals().op_total(Op::MembraneChange) - first.totals().op_total(Op::MembraneChange);
    assert!(second_only > 0);
    assert_ne!(st.logits.iter().sum::<f32>(), 0.0);
}

/// The per-step records (`run --dump-outputs`) agree with the run: their spikes add up to each LIF
/// layer's spike count in the ledger, their predictions give the reported top-1, and their
/// log-probabilities are a sorted prefix of a distribution.
#[test]
fn per_step_records_add_up_to_the_ledger_and_the_accuracy() {
    let mut sc =
        picojoule::scenario::LoadedScenario::load(&super::util::repo_path("scenarios/trained.ron"))
            .unwrap();
    sc.override_tokens(40).unwrap();
    let outs = picojoule::exec::execute_recording(&sc, &Default::default(), Some(4)).unwrap();
    let mut saw_spikes = false;
    for o in &outs {
        assert_eq!(o.steps.len(), 40, "{}", o.label);
        for (i, name) in o.lif_layers.iter().enumerate() {
            let from_steps: u64 = o.steps.iter().map(|s| s.spikes[i]).sum();
            assert_eq!(
                from_steps,
                o.ledger.subtree(name).op_total(Op::Spike),
                "{name}"
            );
            saw_spikes |= from_steps > 0;
        }
        let right = o
            .steps
            .iter()
            .filter(|s| Some(s.prediction) == s.target)
            .count();
        let acc = o.accuracy.as_ref().unwrap();
        assert_eq!(right as f64 / 40.0, acc.top1, "{}", o.label);
        for s in &o.steps {
            assert_eq!(s.top.len(), 4);
            assert_eq!(s.top[0].0, s.prediction);
            assert!(s.top.windows(2).all(|w| w[0].1 >= w[1].1));
            let mass: f64 = s.top.iter().map(|t| t.1.exp()).sum();
            assert!(mass <= 1.0 + 1e-9 && mass > 0.0);
        }
    }
    assert!(saw_spikes, "the spike-driven run fires");
    // Without recording, no records are kept.
    let plain = picojoule::exec::execute(&sc, &Default::default()).unwrap();
    assert!(plain.iter().all(|o| o.steps.is_empty()));
}

/// Overlapping windows (`stride`): every window after the first re-reads `context - stride`
/// tokens unscored, so the head runs once per scored token plus once per re-read one; a stride
/// equal to the context is the default; a recurrent model or a stride above the context is
/// refused.
#[test]
fn overlapping_windows_rerun_the_overlap_and_score_each_token_once() {
    use crate::all::util::{repo_path, temp_dir, write};
    let dir = temp_dir("stride");
    let scenario = |stride: &str, model: &str| {
        write(
            &dir,
            "s.ron",
            &format!(
                "Scenario(name: \"stride\", hardware: \"horowitz45\", input: Text({:?}), tokens: 300, runs: [(model: {:?}{stride})])",
                repo_path("data/text/sotu-test.txt"),
                repo_path(model),
            ),
        )
    };
    let run = |stride: &str, model: &str| {
        let sc = picojoule::scenario::LoadedScenario::load(&scenario(stride, model)).unwrap();
        picojoule::exec::execute(&sc, &Default::default())
    };
    let model = "models/transformer-sotu-softmax.ron";
    let head_macs = |o: &picojoule::exec::RunOutput| o.ledger.subtree("head").op_total(Op::Mac);
    let disjoint = run("", model).unwrap().remove(0);
    let same = run(", stride: Some(128)", model).unwrap().remove(0);
    let half = run(", stride: Some(64)", model).unwrap().remove(0);
    assert_eq!(disjoint.ledger, same.ledger);
    assert_eq!(disjoint.accuracy, same.accuracy);
    // Windows start at tokens 128, 192 and 256, each re-reading 64 tokens.
    let per_token = head_macs(&disjoint) / 300;
    assert!(per_token > 0);
    assert_eq!(head_macs(&half), per_token * (300 + 3 * 64));
    let (a, b) = (disjoint.accuracy.unwrap(), half.accuracy.unwrap());
    assert_eq!(a.predictions, b.predictions);
    assert_ne!(a.bits_per_token, b.bits_per_token);
    let err = run(", stride: Some(129)", model).unwrap_err().to_string();
    assert!(
        err.contains("between 1 and the model's context 128"),
        "{err}"
    );
    let err = run(", stride: Some(8)", "models/spikegpt-sotu-twin.ron")
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs a model with a context window"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
