//! What every training loop shares: the learning-rate schedule and when to evaluate or stop.

use std::time::Instant;

use crate::Args;

/// Learning rate at `step`: a 50-step linear warm-up, then cosine decay from --lr to
/// --lr x --lr-final over --steps.
pub fn learning_rate(args: &Args, step: usize) -> f64 {
    let progress = step as f64 / args.steps.max(1) as f64;
    let warm = ((step + 1) as f64 / 50.0).min(1.0);
    args.lr
        * warm
        * (args.lr_final
            + (1.0 - args.lr_final) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
}

/// The mean training loss since the last evaluation.
#[derive(Default)]
pub struct RunningMean {
    sum: f64,
    n: usize,
}

impl RunningMean {
    pub fn add(&mut self, loss: f64) {
        self.sum += loss;
        self.n += 1;
    }

    /// The mean so far; the next one starts empty.
    pub fn take(&mut self) -> f64 {
        let mean = self.sum / self.n.max(1) as f64;
        *self = RunningMean::default();
        mean
    }
}

/// Where the run stands after a step.
pub struct Checkpoint {
    pub minutes: f64,
    /// Evaluate now (every --eval-every steps, and after the last step).
    pub evaluate: bool,
    /// Why the run stops here (a log line), if it does before --steps.
    pub stop: Option<String>,
}

pub fn after_step(args: &Args, step: usize, start: Instant) -> Checkpoint {
    let done = step + 1;
    let minutes = start.elapsed().as_secs_f64() / 60.0;
    let stop = if minutes >= args.max_minutes {
        Some(format!(
            "# stopped by --max-minutes after {done} steps (repeat with --stop-after {done})"
        ))
    } else if args.stop_after.is_some_and(|n| done >= n) {
        Some(format!("# stopped by --stop-after after {done} steps"))
    } else {
        None
    };
    Checkpoint {
        minutes,
        evaluate: done.is_multiple_of(args.eval_every) || done == args.steps || stop.is_some(),
        stop,
    }
}

/// The training log: each line goes to stdout and to `<out>/<name>.log`, which starts with the
/// command that produced it.
pub struct TrainLog {
    file: std::fs::File,
}

impl TrainLog {
    pub fn create(args: &Args) -> Result<TrainLog, String> {
        std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
        let path = args.out.join(format!("{}.log", args.name));
        let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut log = TrainLog { file };
        let argv: Vec<String> = std::env::args().collect();
        log.say(format!("# command: {}", argv.join(" ")));
        Ok(log)
    }

    pub fn say(&mut self, line: String) {
        use std::io::Write;
        println!("{line}");
        let _ = writeln!(self.file, "{line}");
    }
}

/// `<out>/<name>.logits.json`: the trainer's own outputs on a fixed input, which
/// `tests/all/trained.rs` compares with picojoule's execution.
pub fn write_check_file(args: &Args, json: &serde_json::Value) -> Result<(), String> {
    let path = args.out.join(format!("{}.logits.json", args.name));
    let text = serde_json::to_string(json).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}
