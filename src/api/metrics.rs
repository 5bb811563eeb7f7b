//! Request counters and latency histograms by route pattern (not raw path,
//! so ids do not explode the label space), plus group-commit counters.

use crate::store::CommitStats;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::time::Duration;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    flushes: IntGauge,
    commits: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )?;
        let flushes = IntGauge::new(
            "store_group_commit_flushes_total",
            "Flushes (sled flush + fsync) since start",
        )?;
        let commits = IntGauge::new(
            "store_group_commit_waiters_total",
            "Durability requests answered by those flushes",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(flushes.clone()))?;
        registry.register(Box::new(commits.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            flushes,
            commits,
        })
    }

    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    pub fn render(&self, commit: &CommitStats) -> String {
        self.flushes.set(commit.flushes() as i64);
        self.commits.set(commit.commits() as i64);
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
