//! Progress of a dataset run: an indicatif bar (samples/s, model
//! evaluations/s, ETA) on a terminal, else a one-line log every few seconds.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    failed: usize,
    evaluations: u64,
    start: Instant,
    last_log: Instant,
    log_every: Duration,
    label: String,
}

fn fmt_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "?".into();
    }
    let s = secs.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

impl Progress {
    /// `total` samples to do; the bar is drawn only when stderr is a terminal.
    pub fn new(label: &str, total: usize, log_every_secs: f64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} {bar:30.cyan/blue} {pos}/{len} samples [{elapsed_precise} < {eta_precise}] {per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style);
            b.set_prefix(label.to_string());
            b.enable_steady_tick(Duration::from_millis(500));
            b
        });
        let now = Instant::now();
        Self {
            bar,
            total,
            done: 0,
            failed: 0,
            evaluations: 0,
            start: now,
            last_log: now,
            log_every: Duration::from_secs_f64(log_every_secs.max(0.1)),
            label: label.to_string(),
        }
    }

    /// One sample finished (`evaluations` model evaluations; `ok = false` for a failure).
    pub fn sample(&mut self, evaluations: usize, ok: bool) {
        self.done += 1;
        if !ok {
            self.failed += 1;
        }
        self.evaluations += evaluations as u64;
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let evals_per_s = self.evaluations as f64 / secs;
        match &self.bar {
            Some(b) => {
                b.set_message(format!("{evals_per_s:.0} evals/s, {} failed", self.failed));
                b.inc(1);
            }
            None => {
                if self.last_log.elapsed() >= self.log_every || self.done == self.total {
                    self.last_log = Instant::now();
                    eprintln!("{}", self.line());
                }
            }
        }
    }

    /// The periodic log line.
    pub fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        let eta = if rate > 0.0 {
            (self.total - self.done) as f64 / rate
        } else {
            f64::NAN
        };
        format!(
            "{}: {}/{} samples ({} failed), {:.3} samples/s, {:.0} evals/s, elapsed {}, ETA {}",
            self.label,
            self.done,
            self.total,
            self.failed,
            rate,
            self.evaluations as f64 / secs,
            fmt_duration(secs),
            fmt_duration(eta)
        )
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    /// Prints a message without breaking the bar.
    pub fn println(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_counts() {
        let mut p = Progress::new("run", 4, 1000.0);
        p.sample(100, true);
        p.sample(50, false);
        let l = p.line();
        assert!(l.starts_with("run: 2/4 samples (1 failed)"), "{l}");
        assert_eq!(fmt_duration(3725.0), "1:02:05");
        assert_eq!(fmt_duration(f64::NAN), "?");
    }
}
