//! `GET /metrics`: the bus's counters in the Prometheus text exposition format, read fresh
//! on each scrape.

use crate::api::Shared;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use event_core::{MetricsSnapshot, SubscriptionInfo};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;

/// The content type of the exposition.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Handler latency buckets, in powers of two of microseconds: every other one from 16 µs to
/// about 17 s (the bus counts in every power of two; these are sums of pairs).
const BUCKET_EXPONENTS: [u32; 11] = [4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24];

/// One scrape: what the bus said when it began.
#[derive(Debug)]
struct Scrape {
    bus: MetricsSnapshot,
    subscriptions: Vec<SubscriptionInfo>,
    dead_letters: Option<HashMap<String, u64>>,
}

/// `GET /metrics`. Needs no token: names of subscriptions and event types, and counts, are
/// all it shows.
pub(crate) async fn metrics(State(state): State<Shared>) -> Response {
    let dead_letters = match state.bus.try_dead_letters().await {
        Ok(letters) => Some(crate::api::dead_letters::count_by_subscription(letters)),
        Err(error) => {
            tracing::warn!(%error, "dead letters not readable: left out of /metrics");
            None
        }
    };
    let scrape = Scrape {
        bus: state.bus.metrics(),
        subscriptions: state.bus.subscriptions().await,
        dead_letters,
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

type Labels = Vec<(&'static str, String)>;

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_bus(&mut encoder)?;
        self.encode_per_type(&mut encoder)?;
        self.encode_latency(&mut encoder)?;
        self.encode_gauges(&mut encoder)
    }
}

impl Scrape {
    /// The bus's own counters.
    fn encode_bus(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let bus = [
            (
                "events_published",
                "Events accepted by publish.",
                self.bus.published,
            ),
            (
                "events_deduplicated",
                "Deliveries skipped: the subscription had handled the event already.",
                self.bus.deduplicated,
            ),
            (
                "events_fenced",
                "Deliveries left to a shard's new owner after its lease was lost.",
                self.bus.fenced,
            ),
            (
                "events_refused_writes",
                "Writes refused because their lease had passed to another owner.",
                self.bus.refused,
            ),
        ];
        for (name, help, value) in bus {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        Ok(())
    }

    /// Deliveries, retries and dead letters per subscription and event type.
    fn encode_per_type(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let per_type = [
            (
                "events_delivered",
                "Deliveries a subscription's handler completed.",
                (|t: &event_core::TypeStats| t.delivered) as fn(&event_core::TypeStats) -> u64,
            ),
            (
                "events_retried",
                "Failed handler attempts that were retried.",
                |t| t.retried,
            ),
            (
                "events_dead_lettered",
                "Deliveries moved to the dead letters.",
                |t| t.dead_lettered,
            ),
        ];
        for (name, help, value) in per_type {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (labels, stats) in self.types() {
                ConstCounter::new(value(stats)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    /// Handler latency histograms per subscription and event type.
    fn encode_latency(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "event_handler_duration_seconds",
            "Handler latency per subscription and event type (one call in 8 is timed).",
            None,
            MetricType::Histogram,
        )?;
        for (labels, stats) in self.types() {
            let counts: Vec<(std::time::Duration, u64)> = stats.latency.buckets().collect();
            // Per bucket, not cumulative: the encoder sums them up.
            let mut buckets = Vec::with_capacity(BUCKET_EXPONENTS.len() + 1);
            let mut next = 0;
            for exponent in BUCKET_EXPONENTS {
                let mut in_bucket = 0;
                while next < counts.len() && next <= exponent as usize {
                    in_bucket += counts[next].1;
                    next += 1;
                }
                #[allow(clippy::cast_precision_loss)]
                let bound = (1u64 << exponent) as f64 / 1e6;
                buckets.push((bound, in_bucket));
            }
            let rest = counts[next.min(counts.len())..]
                .iter()
                .map(|(_, c)| c)
                .sum();
            // The encoder writes `+Inf` for `f64::MAX` (and `inf` for infinity).
            buckets.push((f64::MAX, rest));
            family
                .encode_family(&labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    stats.latency.sum().as_secs_f64(),
                    stats.latency.count(),
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }

    /// Lag, in flight and dead letters kept, per subscription.
    fn encode_gauges(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauges = [
            (
                "event_subscription_lag",
                "How far behind a subscription is: store positions, broker entries, or queued deliveries.",
                (|s: &SubscriptionInfo| s.lag) as fn(&SubscriptionInfo) -> Option<u64>,
            ),
            (
                "event_subscription_in_flight",
                "Deliveries queued or being handled.",
                |s| Some(s.in_flight),
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for info in &self.subscriptions {
                if let Some(value) = value(info) {
                    let labels: Labels = vec![("subscription", info.name.clone())];
                    gauge(value).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        if let Some(kept) = &self.dead_letters {
            let mut family = encoder.encode_descriptor(
                "event_dead_letters",
                "Dead letters kept now, per subscription.",
                None,
                MetricType::Gauge,
            )?;
            for info in &self.subscriptions {
                let labels: Labels = vec![("subscription", info.name.clone())];
                let count = kept.get(&info.name).copied().unwrap_or(0);
                gauge(count).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    /// Every (subscription, event type) with its labels.
    fn types(&self) -> impl Iterator<Item = (Labels, &event_core::TypeStats)> {
        self.subscriptions.iter().flat_map(|info| {
            info.by_type.iter().map(|stats| {
                let labels: Labels = vec![
                    ("subscription", info.name.clone()),
                    ("event_type", stats.event_type.clone()),
                ];
                (labels, stats)
            })
        })
    }
}

fn gauge(value: u64) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
}
