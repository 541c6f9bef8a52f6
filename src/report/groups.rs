//! Runs grouped by the scenario's `group` field (one model trained with several seeds): the mean
//! and spread of each group, and whether two groups, or a group and a reference predictor,
//! differ by more than their seeds do.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::RunReport;
use crate::exec::ReferenceOutput;

/// Mean and spread of one quantity over the runs of a group.
#[derive(Clone, Debug, Serialize)]
pub struct Spread {
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator); 0 for one run.
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Some(Spread {
            mean,
            sd: var.sqrt(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// The runs that share a `group` label, summarised.
#[derive(Clone, Debug, Serialize)]
pub struct GroupSummary {
    pub group: String,
    /// Labels of the runs, in the scenario's order.
    pub runs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_token: Option<Spread>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top1: Option<Spread>,
    /// Energy per token (or image), under the report's cost model.
    pub energy_pj_per_token: Spread,
}

/// The accuracy two groups are compared by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Language models.
    BitsPerToken,
    /// Classifiers (whose runs have no bits).
    Top1,
}

impl GroupSummary {
    /// The accuracy a group is judged by: bits per token for a language model, top-1 for a
    /// classifier.
    fn accuracy(&self) -> Option<(Metric, &Spread)> {
        match (&self.bits_per_token, &self.top1) {
            (Some(b), _) => Some((Metric::BitsPerToken, b)),
            (None, Some(t)) => Some((Metric::Top1, t)),
            (None, None) => None,
        }
    }
}

/// Summaries of the runs grouped by the scenario's `group` fields (groups in order of their
/// first run).
pub fn group_summaries(runs: &[RunReport], groups: &[Option<String>]) -> Vec<GroupSummary> {
    let mut names: Vec<&str> = Vec::new();
    for g in groups.iter().flatten() {
        if !names.contains(&g.as_str()) {
            names.push(g);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let members: Vec<&RunReport> = runs
                .iter()
                .zip(groups)
                .filter(|(_, g)| g.as_deref() == Some(name))
                .map(|(r, _)| r)
                .collect();
            let acc = |f: fn(&crate::exec::Accuracy) -> Option<f64>| {
                let v: Vec<f64> = members
                    .iter()
                    .filter_map(|r| r.accuracy.as_ref().and_then(f))
                    .collect();
                (v.len() == members.len()).then(|| Spread::of(&v)).flatten()
            };
            let energy: Vec<f64> = members
                .iter()
                .map(|r| r.totals.energy_pj_per_token)
                .collect();
            GroupSummary {
                group: name.to_string(),
                runs: members.iter().map(|r| r.label.clone()).collect(),
                bits_per_token: acc(|a| a.bits_per_token),
                top1: acc(|a| Some(a.top1)),
                energy_pj_per_token: Spread::of(&energy).expect("a group has a run"),
            }
        })
        .collect()
}

/// The accuracy of group `a` against group or reference `b`: the difference of the means, how
/// many seed spreads it spans and Welch's t-test of it.
#[derive(Clone, Debug, Serialize)]
pub struct GroupDifference {
    pub a: String,
    /// A group, or a reference predictor (a single value with no spread).
    pub b: String,
    pub b_is_reference: bool,
    /// `bits_per_token` (language models) or `top1` (classifiers).
    pub metric: Metric,
    /// mean(a) - mean(b), in the metric's unit (top-1 as a fraction).
    pub difference: f64,
    /// |difference| over the larger sample standard deviation of the two; absent when neither
    /// varies (one run each, or runs that agree exactly).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spreads: Option<f64>,
    /// Welch's t (unequal variances; against a reference, the one-sample t), its
    /// Welch-Satterthwaite degrees of freedom and the two-sided p-value. The groups are taken
    /// as independent samples of training seeds. Absent when the test is undefined (fewer
    /// than two runs, or no variance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub welch: Option<Welch>,
    /// Mean energy per token of a over that of b; absent against a reference (not priced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy_ratio: Option<f64>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Welch {
    pub t: f64,
    pub df: f64,
    pub p_two_sided: f64,
}

/// Welch's test of mean(a) - mean(b) from each side's (mean, sample sd, n); a side with n = 1
/// and sd 0 is a fixed value (the one-sample test then).
fn welch(a: (f64, f64, usize), b: (f64, f64, usize)) -> Option<Welch> {
    let term = |(_, sd, n): (f64, f64, usize)| (sd * sd / n as f64, n);
    let ((va, na), (vb, nb)) = (term(a), term(b));
    let se2 = va + vb;
    if se2 <= 0.0 || !se2.is_finite() {
        return None;
    }
    let part = |v: f64, n: usize| if n > 1 { v * v / (n - 1) as f64 } else { 0.0 };
    let denom = part(va, na) + part(vb, nb);
    if denom <= 0.0 {
        return None;
    }
    let df = se2 * se2 / denom;
    let t = (a.0 - b.0) / se2.sqrt();
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(Welch {
        t,
        df,
        p_two_sided: (2.0 * dist.sf(t.abs())).min(1.0),
    })
}

/// |difference| in standard deviations `sd`; None when `sd` is 0 (nothing varies).
fn spreads(difference: f64, sd: f64) -> Option<f64> {
    (sd > 0.0).then(|| difference.abs() / sd)
}

/// Every pair of groups judged by the same accuracy on the same input, in scenario order, then
/// every group against each reference predictor of its kind (bits for language models, top-1
/// for classifiers).
pub fn group_differences(
    groups: &[GroupSummary],
    runs: &[RunReport],
    references: &[ReferenceOutput],
) -> Vec<GroupDifference> {
    let input_of = |g: &GroupSummary| {
        runs.iter()
            .find(|r| g.runs.first() == Some(&r.label))
            .and_then(|r| r.input.clone())
    };
    let mut out = Vec::new();
    for (i, ga) in groups.iter().enumerate() {
        let Some((metric, sa)) = ga.accuracy() else {
            continue;
        };
        let na = ga.runs.len();
        for gb in &groups[i + 1..] {
            let Some((mb, sb)) = gb.accuracy() else {
                continue;
            };
            if mb != metric || input_of(ga) != input_of(gb) {
                continue;
            }
            out.push(GroupDifference {
                a: ga.group.clone(),
                b: gb.group.clone(),
                b_is_reference: false,
                metric,
                difference: sa.mean - sb.mean,
                spreads: spreads(sa.mean - sb.mean, sa.sd.max(sb.sd)),
                welch: welch((sa.mean, sa.sd, na), (sb.mean, sb.sd, gb.runs.len())),
                energy_ratio: Some(ga.energy_pj_per_token.mean / gb.energy_pj_per_token.mean),
            });
        }
    }
    for g in groups {
        let Some((metric, s)) = g.accuracy() else {
            continue;
        };
        for r in references {
            let value = match (metric, r.accuracy.bits_per_token) {
                (Metric::BitsPerToken, Some(bits)) => bits,
                (Metric::Top1, None) => r.accuracy.top1,
                _ => continue,
            };
            out.push(GroupDifference {
                a: g.group.clone(),
                b: r.label.clone(),
                b_is_reference: true,
                metric,
                difference: s.mean - value,
                spreads: spreads(s.mean - value, s.sd),
                welch: welch((s.mean, s.sd, g.runs.len()), (value, 0.0, 1)),
                energy_ratio: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, bits: &[f64], energy: f64) -> GroupSummary {
        GroupSummary {
            group: name.into(),
            runs: (0..bits.len()).map(|i| format!("{name} {i}")).collect(),
            bits_per_token: Spread::of(bits),
            top1: Spread::of(&vec![0.5; bits.len()]),
            energy_pj_per_token: Spread::of(&[energy]).unwrap(),
        }
    }

    #[test]
    fn welch_matches_a_hand_computed_test() {
        // a = [1, 2, 3], b = [4, 6, 8]: variances 1 and 4, se^2 = 5/3, t = -4 / sqrt(5/3),
        // df = (5/3)^2 / ((1/3)^2 / 2 + (4/3)^2 / 2) = 50/17.
        let w = welch((2.0, 1.0, 3), (6.0, 2.0, 3)).unwrap();
        assert!((w.t - (-4.0 / (5.0f64 / 3.0).sqrt())).abs() < 1e-12);
        assert!((w.df - 50.0 / 17.0).abs() < 1e-12);
        // t = -3.0984 on 2.941 df: two-sided p 0.05479 (the t density integrated numerically
        // outside statrs).
        assert!((w.p_two_sided - 0.05479).abs() < 1e-4, "{}", w.p_two_sided);
    }

    #[test]
    fn against_a_fixed_value_welch_is_the_one_sample_test() {
        // mean 2, sd 1, n 4 against 1: t = 1 / (1 / 2) = 2 on 3 df.
        let w = welch((2.0, 1.0, 4), (1.0, 0.0, 1)).unwrap();
        assert!((w.t - 2.0).abs() < 1e-12 && (w.df - 3.0).abs() < 1e-12);
        assert!(
            welch((2.0, 0.0, 3), (1.0, 0.0, 3)).is_none(),
            "no variance, no test"
        );
    }

    #[test]
    fn groups_are_compared_in_pairs_and_with_references_of_their_kind() {
        let groups = [
            group("twin", &[1.70, 1.68, 1.74], 2.0),
            group("softmax", &[1.90, 1.92, 1.98], 4.0),
        ];
        let ngram = ReferenceOutput {
            label: "n-gram".into(),
            description: "n-gram".into(),
            train: "train.txt".into(),
            tokens: 10,
            accuracy: crate::exec::Accuracy {
                task: "next-token".into(),
                top1: 0.6,
                bits_per_token: Some(1.9),
                top1_ci95: None,
                predictions: 10,
            },
        };
        let knn = ReferenceOutput {
            accuracy: crate::exec::Accuracy {
                task: "classification".into(),
                bits_per_token: None,
                ..ngram.accuracy.clone()
            },
            label: "1-NN".into(),
            ..ngram.clone()
        };
        let d = group_differences(&groups, &[], &[ngram, knn]);
        let names: Vec<(&str, &str)> = d.iter().map(|x| (x.a.as_str(), x.b.as_str())).collect();
        assert_eq!(
            names,
            [
                ("twin", "softmax"),
                ("twin", "n-gram"),
                ("softmax", "n-gram")
            ],
            "language-model groups are not compared with a classifier's reference"
        );
        assert!((d[0].difference + 0.2267).abs() < 1e-3);
        assert_eq!(d[0].energy_ratio, Some(0.5));
        // sds 0.0306 and 0.0416: 0.2267 / 0.0416 = 5.44 spreads of the larger.
        assert!(
            (d[0].spreads.unwrap() - 5.444).abs() < 0.01,
            "{:?}",
            d[0].spreads
        );
        assert!(d[0].welch.unwrap().p_two_sided < 0.01);
        assert!(d[1].b_is_reference && d[1].energy_ratio.is_none());
    }
}
