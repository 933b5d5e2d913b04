//! Counters and handler latency of a bus.

use super::stats::LatencyHistogram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Latency buckets: bucket `i` holds durations below `2^i` microseconds.
const BUCKETS: usize = 40;

#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) deduplicated: AtomicU64,
    pub(crate) fenced: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) in_flight: AtomicU64,
    latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            published: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            deduplicated: AtomicU64::new(0),
            fenced: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            latency: Histogram::default(),
        }
    }
}

/// Handler latency in power-of-two buckets: bucket `i` holds durations below `2^i`
/// microseconds (and at least the bucket before's bound).
#[derive(Debug)]
pub(crate) struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub(crate) fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        self.counts[bucket.min(BUCKETS - 1)].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            sum_micros: self.sum_micros.load(Relaxed),
        }
    }
}

impl Metrics {
    pub(crate) fn record_latency(&self, latency: Duration) {
        self.latency.record(latency);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let latency = self.latency.snapshot();
        let percentile = |p| latency.percentile(p);
        MetricsSnapshot {
            published: self.published.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            deduplicated: self.deduplicated.load(Relaxed),
            fenced: self.fenced.load(Relaxed),
            refused: self.refused.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            latency_p50: percentile(0.50),
            latency_p90: percentile(0.90),
            latency_p99: percentile(0.99),
        }
    }
}

/// The bus's counters at one moment.
///
/// Latency percentiles are of successful and failed handler calls alike, measured per
/// attempt, and given as the upper bound of a power-of-two bucket of microseconds: at most 2×
/// the true value. `None` before any handler ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Events accepted by `publish`.
    pub published: u64,
    /// Deliveries a handler completed successfully (one event to two subscriptions is two).
    pub delivered: u64,
    /// Attempts that failed and were retried.
    pub retried: u64,
    /// Deliveries moved to the dead letters.
    pub dead_lettered: u64,
    /// Deliveries skipped because the subscription had already handled the event (durable
    /// bus: an event read again after a restart or a lost checkpoint).
    pub deduplicated: u64,
    /// Deliveries not handled here because their shard's lease was lost meanwhile (on a
    /// transport, or in a consumer group on a shared store): the shard's new owner handles
    /// them.
    pub fenced: u64,
    /// Writes of this process refused because the lease they were made under had passed to
    /// another owner (it ran out while this process was paused, say): an acknowledgement, a
    /// dead letter, a shard's checkpoint or inbox claim, the outbox relay's position (or a
    /// batch it did not publish, its lease having run out since it read it). Each is the
    /// new owner's to make.
    pub refused: u64,
    /// Deliveries enqueued or running, not yet delivered or dead-lettered.
    pub in_flight: u64,
    /// Median handler latency. Latency is sampled: one handler call in 8 per subscription
    /// (its first call included) is timed.
    pub latency_p50: Option<Duration>,
    /// 90th percentile handler latency.
    pub latency_p90: Option<Duration>,
    /// 99th percentile handler latency.
    pub latency_p99: Option<Duration>,
}
