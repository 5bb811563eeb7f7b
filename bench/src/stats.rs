//! Latency samples, the result rows, the closed-loop load driver, and the
//! table and JSON they print as.

use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One line of the results table.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Row {
    pub scenario: String,
    pub requests: u64,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
    /// Requests/s relative to the bare actix-web handler, for read scenarios.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_bare: Option<f64>,
    /// Scenario-specific figures (sold units, memory per session...).
    pub notes: String,
    /// A few error descriptions, for diagnosis.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
}

/// Latencies and errors gathered by one or many workers.
#[derive(Debug, Default)]
pub struct Samples {
    pub latencies: Vec<Duration>,
    pub errors: u64,
    pub error_samples: Vec<String>,
}

impl Samples {
    pub fn ok(&mut self, latency: Duration) {
        self.latencies.push(latency);
    }

    pub fn error(&mut self, what: impl FnOnce() -> String) {
        self.errors += 1;
        if self.error_samples.len() < 3 {
            self.error_samples.push(what());
        }
    }

    pub fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        for e in other.error_samples {
            if self.error_samples.len() < 3 {
                self.error_samples.push(e);
            }
        }
    }

    /// The row for these samples over `elapsed`; throughput counts
    /// successful requests only.
    pub fn row(mut self, scenario: &str, elapsed: Duration) -> Row {
        self.latencies.sort_unstable();
        let ms = |p: f64| percentile(&self.latencies, p).as_secs_f64() * 1e3;
        let seconds = elapsed.as_secs_f64();
        Row {
            scenario: scenario.to_owned(),
            requests: self.latencies.len() as u64,
            seconds,
            requests_per_s: self.latencies.len() as f64 / seconds.max(1e-9),
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            errors: self.errors,
            ratio_to_bare: None,
            notes: String::new(),
            error_samples: self.error_samples,
        }
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What one iteration of a scenario reports: the latency of the measured
/// request, or why it failed.
pub type Outcome = Result<Duration, String>;

/// Closed-loop load: `workers` tasks each run `step(worker, iteration)` back
/// to back until `duration` has passed (after `warmup`, whose iterations
/// are not counted). Each worker holds at most one request in flight, so
/// `workers` is the number of concurrent keep-alive connections.
pub async fn drive<F, Fut>(
    name: &str,
    workers: usize,
    warmup: Duration,
    duration: Duration,
    step: F,
) -> Row
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let step = Arc::new(step);
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + duration;
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let step = step.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let mut iteration = 0u64;
            loop {
                let began = Instant::now();
                if began >= deadline {
                    break;
                }
                let outcome = step(worker, iteration).await;
                iteration += 1;
                if began < measure_from {
                    continue;
                }
                match outcome {
                    Ok(latency) => samples.ok(latency),
                    Err(e) => samples.error(|| e),
                }
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for task in tasks {
        if let Ok(samples) = task.await {
            all.merge(samples);
        }
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    all.row(name, elapsed)
}

/// Runs `request` and returns its latency when it answers 2xx.
pub async fn timed<Fut>(request: Fut) -> Outcome
where
    Fut: Future<Output = anyhow::Result<(reqwest::StatusCode, serde_json::Value)>>,
{
    let began = Instant::now();
    match request.await {
        Ok((status, _)) if status.is_success() => Ok(began.elapsed()),
        Ok((status, body)) => Err(format!("{status} {body}")),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// The results as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | req/s | p50 ms | p99 ms | p99.9 ms | errors | vs bare actix | notes |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for r in rows {
        let ratio = r
            .ratio_to_bare
            .map_or_else(String::new, |x| format!("{:.2}", x));
        out.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} |\n",
            r.scenario, r.requests_per_s, r.p50_ms, r.p99_ms, r.p999_ms, r.errors, ratio, r.notes
        ));
    }
    out
}
