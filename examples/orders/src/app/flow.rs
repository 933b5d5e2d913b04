//! The script of the main example, and what the store holds after it.

use super::Error;
use super::services::{Mailer, Services, timestamp};
use crate::invoice::InvoiceIssued;
use crate::order::{
    Address, LineItem, OrderCheckoutSent, OrderCreated, OrderPaid, OrderPaymentProcessing,
    PaymentMethod,
};
use crate::shipment::{ShipmentDelivered, ShipmentInTransit, ShipmentReady};
use chrono::{TimeDelta, Utc};
use event_core::store::{Position, SqliteStore, Store, StoredEvent};
use event_core::{DeadLetter, EventBus, MetricsSnapshot, PublishContext};
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The order whose life the example tells.
pub const ORDER_ID: &str = "ord_7Hq2";

/// The correlation id of the whole flow: the script publishes under it, and every handler's
/// follow-up carries it on.
pub const CORRELATION_ID: &str = "checkout-ord_7Hq2";

/// How long the script, and fulfillment waiting for billing, wait for an event that is
/// expected to come.
const PATIENCE: Duration = Duration::from_secs(5);

/// Events read from the store at a time for the report.
const PAGE: usize = 1000;

/// Runs one order's life on a durable bus over a new SQLite file at `path`, and reports what
/// the store holds afterwards.
///
/// Subscribes the three [`Services`], then publishes, as the storefront and the payment
/// provider, `order.created`, `order.checkout_sent`, `order.payment_processing` and
/// `order.paid` under [`CORRELATION_ID`]. Billing answers `order.created` with
/// `invoice.issued` (the script waits for it before sending the checkout link) and
/// `order.paid` with `invoice.paid`; fulfillment answers `order.paid` with
/// `fulfillment.created` and `shipment.drafted`, and `shipment.drafted` with
/// `shipment.ready`. The script waits for `shipment.ready`, then stands in for the carrier:
/// `shipment.in_transit`, caused by `shipment.ready`, and `shipment.delivered`, caused by
/// `shipment.in_transit`. Then it shuts the bus down, which drains every subscription.
///
/// Writes a short narration and the notification emails to `out` as they happen; the
/// report is for [`FlowReport::write`].
///
/// # Errors
///
/// [`Error::Exists`] when `path` exists already; [`Error::Store`] when the store cannot be
/// opened or read; [`Error::Wait`] when an event the script waits for does not come (a
/// handler failed: the dead letters say why); [`Error::Publish`], [`Error::Subscribe`] or
/// [`Error::Io`] when the bus or `out` refuses. A handler that fails is no error of `run`:
/// its delivery ends up in [`FlowReport::dead_letters`].
pub async fn run(path: &Path, out: impl Write + Send + 'static) -> Result<FlowReport, Error> {
    run_with_admin(path, out, None).await
}

/// [`run`], with the admin API and dashboard (`event-admin`) served on `admin` while the
/// bus runs: the address and the token go to `out`, and after the script the bus keeps
/// running until Ctrl-C, for a look at its subscriptions, dead letters and timeline. The
/// token is `EVENT_ADMIN_TOKEN` if set, else a fresh one.
///
/// # Errors
///
/// Those of [`run`], and [`Error::Io`] when `admin` cannot be served (an address beyond
/// loopback, or one in use).
pub async fn run_with_admin(
    path: &Path,
    out: impl Write + Send + 'static,
    admin: Option<SocketAddr>,
) -> Result<FlowReport, Error> {
    if path.exists() {
        return Err(Error::Exists(path.to_owned()));
    }
    let mailer = Mailer::new(out);
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    mailer.line(format_args!(
        "== order {ORDER_ID}, from checkout to delivery, on a durable bus in {file} (SQLite)"
    ))?;

    let store = SqliteStore::open(path)?;
    let bus = EventBus::builder().store(store.clone()).build();
    let services = Services::subscribe(&bus, Arc::new(store.clone()), PATIENCE, mailer.clone())?;
    mailer.line(format_args!(
        "subscribed: {}, {}, {}",
        services.fulfillment.name, services.billing.name, services.notifications.name
    ))?;
    mailer.line(format_args!(
        "script: order.created, order.checkout_sent, order.payment_processing, order.paid; \
         then, as the carrier, shipment.in_transit, shipment.delivered"
    ))?;
    let serving = match admin {
        // Listening for Ctrl-C from now on: one pressed during the flow ends the wait after.
        Some(addr) => Some((
            serve_admin(&bus, addr, &mailer).await?,
            tokio::spawn(tokio::signal::ctrl_c()),
        )),
        None => None,
    };
    mailer.line(format_args!("notifications sent:"))?;

    let scripted = script(&bus).await;
    if let Some((serving, interrupted)) = serving {
        mailer.line(format_args!(
            "the flow is done; the admin API still serves it: Ctrl-C to stop"
        ))?;
        interrupted.await.map_err(io::Error::other)??;
        serving.shutdown().await;
    }
    // Drains every subscription, including what handlers publish meanwhile, and saves
    // their checkpoints; also after a failed script, so no handler is cut off mid-event.
    bus.shutdown().await;
    scripted?;
    FlowReport::read(&bus, &store, &services).await
}

/// Serves the admin API of `bus` on `addr`, and says where and with which token.
async fn serve_admin(
    bus: &EventBus,
    addr: SocketAddr,
    mailer: &Mailer,
) -> Result<event_admin::Serving, Error> {
    let (admin, secret) = event_admin::Admin::new(bus.clone()).token_from_env_or_random();
    let serving = admin.serve(addr).await?;
    mailer.line(format_args!(
        "admin API and dashboard: http://{} (token {secret})",
        serving.local_addr()
    ))?;
    Ok(serving)
}

/// The storefront, the payment provider and the carrier.
async fn script(bus: &EventBus) -> Result<(), Error> {
    let context = || PublishContext::new().correlation_id(CORRELATION_ID);
    let now = Utc::now();

    bus.publish_with(context(), order_created()).await?;
    // The checkout link goes out once billing has issued the invoice.
    bus.wait_for::<InvoiceIssued>(CORRELATION_ID, PATIENCE)
        .await?;
    bus.publish_with(
        context(),
        OrderCheckoutSent {
            order_id: ORDER_ID.to_owned(),
            checkout_session_id: "cs_4f8a2c".to_owned(),
            customer_email: EMAIL.to_owned(),
            checkout_url: "https://pay.example.com/c/cs_4f8a2c".to_owned(),
            expires_at: timestamp(now + TimeDelta::hours(24)),
            sent_at: timestamp(Utc::now()),
        },
    )
    .await?;
    bus.publish_with(
        context(),
        OrderPaymentProcessing {
            order_id: ORDER_ID.to_owned(),
            payment_id: PAYMENT_ID.to_owned(),
            method: PaymentMethod::Card,
            amount_cents: TOTAL_CENTS,
            currency: CURRENCY.to_owned(),
            received_at: timestamp(Utc::now()),
        },
    )
    .await?;
    bus.publish_with(
        context(),
        OrderPaid {
            order_id: ORDER_ID.to_owned(),
            payment_id: PAYMENT_ID.to_owned(),
            method: PaymentMethod::Card,
            amount_cents: TOTAL_CENTS,
            currency: CURRENCY.to_owned(),
            receipt_url: Some(format!("https://pay.example.com/r/{PAYMENT_ID}")),
            paid_at: timestamp(Utc::now()),
        },
    )
    .await?;

    // Fulfillment readies the parcel; the carrier takes it from there. Outside a handler,
    // the script names the cause of each carrier event itself.
    let ready = bus
        .wait_for::<ShipmentReady>(CORRELATION_ID, PATIENCE)
        .await?;
    let in_transit = bus
        .publish_with(
            context().causation_id(ready.id.to_string()),
            ShipmentInTransit {
                shipment_id: ready.payload.shipment_id.clone(),
                order_id: ready.payload.order_id.clone(),
                carrier: ready.payload.carrier,
                tracking_number: ready.payload.tracking_number.clone(),
                last_location: Some("Berlin hub".to_owned()),
                estimated_delivery_at: Some(timestamp(Utc::now() + TimeDelta::days(1))),
                scanned_at: timestamp(Utc::now()),
            },
        )
        .await?;
    bus.publish_with(
        context().causation_id(in_transit.id.to_string()),
        ShipmentDelivered {
            shipment_id: in_transit.payload.shipment_id,
            order_id: in_transit.payload.order_id,
            carrier: in_transit.payload.carrier,
            tracking_number: in_transit.payload.tracking_number,
            signed_by: None,
            proof_of_delivery_url: None,
            delivered_at: timestamp(Utc::now()),
        },
    )
    .await?;
    Ok(())
}

const EMAIL: &str = "ada@example.com";
const PAYMENT_ID: &str = "pay_93kd";
const CURRENCY: &str = "EUR";
const TOTAL_CENTS: u64 = 5395;

/// The order: two mugs and a T-shirt, shipped to Berlin.
fn order_created() -> OrderCreated {
    let address = Address {
        name: "Ada Lovelace".to_owned(),
        company: None,
        line1: "Torstraße 42".to_owned(),
        line2: Some("3rd floor".to_owned()),
        city: "Berlin".to_owned(),
        region: None,
        postal_code: "10119".to_owned(),
        country: "DE".to_owned(),
        phone: None,
    };
    OrderCreated {
        order_id: ORDER_ID.to_owned(),
        customer_id: "cus_481".to_owned(),
        customer_email: EMAIL.to_owned(),
        customer_name: address.name.clone(),
        line_items: vec![
            LineItem {
                sku: "MUG-BLK-350".to_owned(),
                quantity: 2,
                unit_price_cents: 1250,
            },
            LineItem {
                sku: "TEE-WHT-M".to_owned(),
                quantity: 1,
                unit_price_cents: 2400,
            },
        ],
        subtotal_cents: 4900,
        shipping_cents: 495,
        tax_cents: 861,
        total_cents: TOTAL_CENTS,
        currency: CURRENCY.to_owned(),
        shipping_address: address,
        created_at: timestamp(Utc::now()),
    }
}

/// What the store holds after the flow, and what the bus counted.
#[derive(Debug)]
#[non_exhaustive]
pub struct FlowReport {
    /// Every stored event, in position order.
    pub events: Vec<StoredEvent>,
    /// The position of the last stored event.
    pub head: Position,
    /// Each subscription: fulfillment, billing, notifications.
    pub subscriptions: Vec<SubscriptionReport>,
    /// The bus's counters after shutdown.
    pub metrics: MetricsSnapshot,
    /// The deliveries that failed for good; none when nothing went wrong.
    pub dead_letters: Vec<DeadLetter>,
}

/// One subscription after the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionReport {
    /// The subscription's name: its union's consumer.
    pub name: &'static str,
    /// How many events its handler handled successfully.
    pub handled: u64,
    /// How many stored events its union names: what it should have handled.
    pub received: u64,
    /// Its checkpoint in the store: every event up to here is handled (or dead-lettered).
    pub checkpoint: Position,
}

impl FlowReport {
    /// Reads the report from the store, after `bus` was shut down.
    async fn read(bus: &EventBus, store: &SqliteStore, services: &Services) -> Result<Self, Error> {
        let mut events = Vec::new();
        loop {
            let after = events.last().map_or(0, |e: &StoredEvent| e.position);
            let page = store.read(after, PAGE).await?;
            if page.is_empty() {
                break;
            }
            events.extend(page);
        }
        let head = store.head().await?;
        let count = |receives: &dyn Fn(&str) -> bool| {
            let n = events
                .iter()
                .filter(|e| receives(&e.envelope.event_type))
                .count();
            u64::try_from(n).unwrap_or(u64::MAX)
        };
        let mut subscriptions = Vec::new();
        for (name, handled, received) in [
            (
                services.fulfillment.name,
                services.fulfillment.handled(),
                count(&|t| services.fulfillment.receives(t)),
            ),
            (
                services.billing.name,
                services.billing.handled(),
                count(&|t| services.billing.receives(t)),
            ),
            (
                services.notifications.name,
                services.notifications.handled(),
                count(&|t| services.notifications.receives(t)),
            ),
        ] {
            subscriptions.push(SubscriptionReport {
                name,
                handled,
                received,
                checkpoint: store.checkpoint(name).await?,
            });
        }
        Ok(FlowReport {
            events,
            head,
            subscriptions,
            metrics: bus.metrics(),
            dead_letters: bus.dead_letters().await,
        })
    }

    /// Whether nothing was lost: no dead letter, and every subscription handled every event
    /// it receives and has its checkpoint at the head.
    pub fn is_complete(&self) -> bool {
        self.dead_letters.is_empty()
            && self
                .subscriptions
                .iter()
                .all(|s| s.handled == s.received && s.checkpoint == self.head)
    }

    /// The stored event that `event`'s causation id names, if it names one in the store.
    pub fn cause_of(&self, event: &StoredEvent) -> Option<&StoredEvent> {
        let cause = event.envelope.causation_id.as_deref()?;
        self.events
            .iter()
            .find(|e| e.envelope.id.to_string() == cause)
    }

    /// Writes the report: the flow as stored, in position order, with the cause of each
    /// follow-up; then each subscription's count and checkpoint, and the bus's counters.
    /// Prints no ids nor times, so it reads the same on every run.
    ///
    /// # Errors
    ///
    /// When `out` fails.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let correlations: BTreeSet<Option<&str>> = self
            .events
            .iter()
            .map(|e| e.envelope.correlation_id.as_deref())
            .collect();
        let shared = match correlations.iter().collect::<Vec<_>>().as_slice() {
            [Some(id)] => format!("all with correlation id {id}"),
            _ => format!("{} different correlation ids", correlations.len()),
        };
        writeln!(
            out,
            "\n== the flow as stored: {} events in position order, {shared}",
            self.events.len()
        )?;
        let rows: Vec<[String; 4]> = self
            .events
            .iter()
            .map(|e| {
                let envelope = &e.envelope;
                let cause = match (&envelope.causation_id, self.cause_of(e)) {
                    (None, _) => String::new(),
                    (Some(_), Some(cause)) => format!("caused by {}", cause.envelope.event_type),
                    (Some(_), None) => "caused by an event not in the store".to_owned(),
                };
                [
                    e.position.to_string(),
                    format!("{} v{}", envelope.event_type, envelope.version),
                    envelope.source.as_deref().unwrap_or("-").to_owned(),
                    cause,
                ]
            })
            .collect();
        let width = |column: usize| rows.iter().map(|r| r[column].chars().count()).max();
        let (w0, w1, w2) = (
            width(0).unwrap_or(0),
            width(1).unwrap_or(0),
            width(2).unwrap_or(0),
        );
        for [position, event, source, cause] in &rows {
            let line = format!("  {position:>w0$}  {event:<w1$}  {source:<w2$}  {cause}");
            writeln!(out, "{}", line.trim_end())?;
        }

        writeln!(
            out,
            "\n== subscriptions: events handled, checkpoint (head: {})",
            self.head
        )?;
        let w0 = self
            .subscriptions
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0);
        for s in &self.subscriptions {
            let handled = if s.handled == s.received {
                format!("{} handled", s.handled)
            } else {
                format!("{} handled of {}", s.handled, s.received)
            };
            let checkpoint = if s.checkpoint == self.head {
                format!("checkpoint {} = head", s.checkpoint)
            } else {
                format!("checkpoint {} < head {}", s.checkpoint, self.head)
            };
            writeln!(out, "  {:<w0$}  {handled:<10}  {checkpoint}", s.name)?;
        }
        let m = &self.metrics;
        writeln!(
            out,
            "bus: {} published, {} delivered, {} retried, {} dead letters",
            m.published,
            m.delivered,
            m.retried,
            self.dead_letters.len()
        )?;
        for letter in &self.dead_letters {
            writeln!(
                out,
                "  dead letter: {} could not handle {} after {} attempts: {}",
                letter.subscription, letter.envelope.event_type, letter.attempts, letter.last_error
            )?;
        }
        Ok(())
    }
}
