//! The consumers of the domain's events, as services with real handlers: billing,
//! fulfillment and notifications, each subscribed with its union from
//! [`consumers`](crate::consumers) and matching it exhaustively.
//!
//! Each keeps what it must remember (the invoice of an order, the email of a customer) in
//! memory, learnt from the events it handles; a real service would keep it in tables of its
//! own, written in the transaction that claims the event. Fulfillment, which needs more of an
//! order than `order.paid` carries, reads the order's `order.created` back from the store's
//! timeline of the order.
//!
//! Inside a handler, `publish` gives the new event the handled event's correlation id and
//! names the handled event as its cause: no handler passes ids around.

use crate::consumers::{Billing, Fulfillment, Notifications};
use crate::fulfillment::FulfillmentCreated;
use crate::invoice::{InvoiceIssued, InvoicePaid, InvoicePartiallyPaid, InvoiceVoided, VoidReason};
use crate::order::{LineItem, OrderCheckoutExpired, OrderCreated, OrderPaid};
use crate::shipment::{Carrier, ShipmentDrafted, ShipmentReady};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use event_core::store::{Store, TimelineQuery};
use event_core::{DomainEvent, Envelope, EventBus, EventUnion, HandlerError, SubscribeError};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How long an invoice is payable: 14 days after it was issued.
const PAYMENT_TERMS: TimeDelta = TimeDelta::days(14);
/// How long the warehouse has to get a paid order out of the door.
const SHIP_WITHIN: TimeDelta = TimeDelta::days(2);
/// What one unit of any product weighs, packed, in grams: the example's whole product data.
const GRAMS_PER_UNIT: u32 = 400;

/// The subscription name of a consumer union: the consumer it declares in
/// `#[union(consumer = "...")]`, so the catalog and the store's checkpoints name the same
/// service; its Rust type when it declares none.
///
/// ```
/// use orders::app::services::subscription_name;
/// use orders::consumers::Billing;
///
/// assert_eq!(subscription_name::<Billing>(), "billing-service");
/// ```
pub fn subscription_name<U: EventUnion>() -> &'static str {
    U::CONSUMER.unwrap_or_else(std::any::type_name::<U>)
}

/// Masks an email address for output: its first character, `***`, and the domain.
///
/// ```
/// use orders::app::services::mask_email;
///
/// assert_eq!(mask_email("ada@example.com"), "a***@example.com");
/// assert_eq!(mask_email("not an address"), "***");
/// ```
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// An amount of cents in a currency, as people read it: `53.95 EUR`.
fn money(cents: u64, currency: &str) -> String {
    format!("{}.{:02} {currency}", cents / 100, cents % 100)
}

/// A timestamp as the events carry it: RFC 3339, UTC, milliseconds.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The three services, subscribed to one bus.
#[derive(Debug)]
pub struct Services {
    /// `billing-service`.
    pub billing: Subscribed<BillingService>,
    /// `fulfillment-service`.
    pub fulfillment: Subscribed<FulfillmentService>,
    /// `notifications`.
    pub notifications: Subscribed<NotificationService>,
}

impl Services {
    /// Subscribes billing, fulfillment and notifications to `bus`, under the consumer names
    /// of their unions. Fulfillment reads orders from `store`, which must be the bus's
    /// store, and waits up to `patience` for billing (see [`FulfillmentService`]);
    /// notifications write their emails to `mailer`.
    ///
    /// # Errors
    ///
    /// [`SubscribeError`] when one of the names is taken or the bus is shut down.
    pub fn subscribe(
        bus: &EventBus,
        store: Arc<dyn Store>,
        patience: Duration,
        mailer: Mailer,
    ) -> Result<Self, SubscribeError> {
        let fulfillment = FulfillmentService {
            bus: bus.clone(),
            store,
            patience,
        };
        let billing = BillingService {
            bus: bus.clone(),
            invoices: Mutex::default(),
        };
        let notifications = NotificationService {
            mailer,
            contacts: Mutex::default(),
        };
        Ok(Services {
            fulfillment: Subscribed::start(bus, fulfillment, FulfillmentService::handle)?,
            billing: Subscribed::start(bus, billing, BillingService::handle)?,
            notifications: Subscribed::start(bus, notifications, NotificationService::handle)?,
        })
    }
}

/// A service subscribed to the bus, and how many events it handled.
#[derive(Debug)]
pub struct Subscribed<S> {
    /// The subscription's name.
    pub name: &'static str,
    /// The service.
    pub service: Arc<S>,
    /// The (type, version) pairs of its union.
    events: &'static [(&'static str, u32)],
    handled: Arc<AtomicU64>,
}

impl<S: Send + Sync + 'static> Subscribed<S> {
    /// Subscribes `service` under the consumer name of the union `U`, each event handled by
    /// `handle`; counts the events it handled successfully.
    fn start<U, F, Fut>(bus: &EventBus, service: S, handle: F) -> Result<Self, SubscribeError>
    where
        U: EventUnion,
        F: Fn(Arc<S>, Envelope<U>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let name = subscription_name::<U>();
        let service = Arc::new(service);
        let handled = Arc::new(AtomicU64::new(0));
        let (target, counter) = (Arc::clone(&service), Arc::clone(&handled));
        bus.subscribe::<U, _, _>(name, move |envelope| {
            let handling = handle(Arc::clone(&target), envelope);
            let counter = Arc::clone(&counter);
            async move {
                handling.await?;
                counter.fetch_add(1, Relaxed);
                Ok(())
            }
        })?;
        Ok(Subscribed {
            name,
            service,
            events: U::EVENTS,
            handled,
        })
    }

    /// How many events the handler has handled successfully so far.
    pub fn handled(&self) -> u64 {
        self.handled.load(Relaxed)
    }

    /// Whether the subscription receives events of this type (of any version: an older one
    /// is upcast, a newer one dead-lettered).
    pub fn receives(&self, event_type: &str) -> bool {
        self.events.iter().any(|(name, _)| *name == event_type)
    }
}

/// Billing: issues an order's invoice when the order is created, and records the payment
/// against it when the order is paid.
#[derive(Debug)]
pub struct BillingService {
    bus: EventBus,
    /// The open invoices, by order id.
    invoices: Mutex<HashMap<String, Invoice>>,
}

/// An invoice billing issued.
#[derive(Debug, Clone)]
struct Invoice {
    id: String,
    amount_cents: u64,
    currency: String,
    paid: bool,
}

impl BillingService {
    /// Handles one event of the [`Billing`] union.
    async fn handle(self: Arc<Self>, envelope: Envelope<Billing>) -> Result<(), HandlerError> {
        match envelope.payload {
            Billing::Created(order) => self.issue(order, envelope.occurred_at).await,
            Billing::Paid(paid) => self.record_payment(paid).await,
            Billing::CheckoutExpired(expired) => self.void(expired).await,
            // Payment terms would start on delivery for an order paid on account; this
            // storefront takes payment before it ships, so there is nothing to start.
            Billing::Delivered(_) => Ok(()),
        }
    }

    /// `order.created`: issues the invoice, payable within the payment terms.
    async fn issue(&self, order: OrderCreated, at: DateTime<Utc>) -> Result<(), HandlerError> {
        let invoice = Invoice {
            id: format!("inv_{}", order.order_id),
            amount_cents: order.total_cents,
            currency: order.currency.clone(),
            paid: false,
        };
        let issued = InvoiceIssued {
            invoice_id: invoice.id.clone(),
            order_id: order.order_id.clone(),
            billing_email: order.customer_email,
            amount_cents: invoice.amount_cents,
            currency: invoice.currency.clone(),
            issued_at: timestamp(at),
            due_at: timestamp(at + PAYMENT_TERMS),
        };
        self.invoices().insert(order.order_id, invoice);
        self.bus.publish(issued).await?;
        Ok(())
    }

    /// `order.paid`: the invoice is paid, in full or in part.
    async fn record_payment(&self, paid: OrderPaid) -> Result<(), HandlerError> {
        let invoice = self.invoice(&paid.order_id)?;
        if paid.currency != invoice.currency {
            return Err(HandlerError::permanent(format!(
                "order {} was paid in {}, its invoice {} is in {}",
                paid.order_id, paid.currency, invoice.id, invoice.currency
            )));
        }
        if paid.amount_cents < invoice.amount_cents {
            self.bus
                .publish(InvoicePartiallyPaid {
                    invoice_id: invoice.id,
                    payment_id: paid.payment_id,
                    amount_paid_cents: paid.amount_cents,
                    amount_due_cents: invoice.amount_cents - paid.amount_cents,
                    currency: paid.currency,
                    paid_at: paid.paid_at,
                })
                .await?;
            return Ok(());
        }
        self.bus
            .publish(InvoicePaid {
                invoice_id: invoice.id,
                payment_id: paid.payment_id,
                amount_cents: invoice.amount_cents,
                currency: invoice.currency,
                paid_at: paid.paid_at,
            })
            .await?;
        if let Some(open) = self.invoices().get_mut(&paid.order_id) {
            open.paid = true;
        }
        Ok(())
    }

    /// `order.checkout_expired`: the customer never paid; the invoice is voided.
    async fn void(&self, expired: OrderCheckoutExpired) -> Result<(), HandlerError> {
        let invoice = self.invoice(&expired.order_id)?;
        if invoice.paid {
            return Ok(()); // paid meanwhile through another checkout session
        }
        self.bus
            .publish(InvoiceVoided {
                invoice_id: invoice.id,
                reason: VoidReason::OrderCancelled,
                replaced_by: None,
                voided_at: expired.expired_at,
            })
            .await?;
        self.invoices().remove(&expired.order_id);
        Ok(())
    }

    fn invoices(&self) -> std::sync::MutexGuard<'_, HashMap<String, Invoice>> {
        self.invoices.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The invoice of an order; a permanent error when billing never issued one.
    fn invoice(&self, order_id: &str) -> Result<Invoice, HandlerError> {
        self.invoices().get(order_id).cloned().ok_or_else(|| {
            HandlerError::permanent(format!("billing issued no invoice for order {order_id}"))
        })
    }
}

/// Fulfillment: opens a fulfillment for a paid order and drafts its shipment, then buys the
/// shipment's label.
///
/// The warehouse starts on an order once billing has recorded its payment: on `order.paid`
/// the handler first waits (up to its patience) for billing's `invoice.paid` with the same
/// correlation id. Besides keeping unsettled orders in the warehouse, this is what makes the
/// order of the stored events the same on every run: without it, billing's and
/// fulfillment's answers to `order.paid` would race.
#[derive(Debug)]
pub struct FulfillmentService {
    bus: EventBus,
    store: Arc<dyn Store>,
    patience: Duration,
}

impl FulfillmentService {
    /// Handles one event of the [`Fulfillment`] union.
    async fn handle(self: Arc<Self>, envelope: Envelope<Fulfillment>) -> Result<(), HandlerError> {
        let at = envelope.occurred_at;
        match envelope.payload {
            Fulfillment::Paid(paid) => {
                if let Some(correlation_id) = &envelope.correlation_id {
                    // A timeout is retryable: billing may only be slow.
                    self.bus
                        .wait_for::<InvoicePaid>(correlation_id, self.patience)
                        .await?;
                }
                self.open(&paid.order_id, at).await
            }
            Fulfillment::ShipmentDrafted(drafted) => self.buy_label(drafted, at).await,
        }
    }

    /// `order.paid`: opens the fulfillment of the whole order and drafts its one parcel.
    async fn open(&self, order_id: &str, at: DateTime<Utc>) -> Result<(), HandlerError> {
        let order = self.order(order_id).await?;
        let fulfillment_id = format!("ful_{order_id}");
        let weight_grams = order
            .line_items
            .iter()
            .map(|item: &LineItem| item.quantity.saturating_mul(GRAMS_PER_UNIT))
            .fold(0, u32::saturating_add);
        self.bus
            .publish(FulfillmentCreated {
                fulfillment_id: fulfillment_id.clone(),
                order_id: order.order_id.clone(),
                warehouse_id: "wh_berlin_1".to_owned(),
                line_items: order.line_items,
                ship_to: order.shipping_address.clone(),
                ship_by: Some(timestamp(at + SHIP_WITHIN)),
                created_at: timestamp(at),
            })
            .await?;
        self.bus
            .publish(ShipmentDrafted {
                shipment_id: format!("shp_{order_id}_1"),
                fulfillment_id,
                order_id: order.order_id,
                carrier: Carrier::Dhl,
                service_level: "standard".to_owned(),
                weight_grams,
                ship_to: order.shipping_address,
                drafted_at: timestamp(at),
            })
            .await?;
        Ok(())
    }

    /// `shipment.drafted`: buys the label; the parcel awaits the carrier.
    async fn buy_label(
        &self,
        drafted: ShipmentDrafted,
        at: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        let tracking_number = tracking_number(&drafted.shipment_id);
        self.bus
            .publish(ShipmentReady {
                tracking_url: format!("https://track.example.com/dhl/{tracking_number}"),
                label_url: format!("https://labels.example.com/{}.pdf", drafted.shipment_id),
                shipment_id: drafted.shipment_id,
                order_id: drafted.order_id,
                carrier: drafted.carrier,
                tracking_number,
                ready_at: timestamp(at),
            })
            .await?;
        Ok(())
    }

    /// The order as created: the newest `order.created` in the store's timeline of the
    /// order id (every order event is partitioned by it).
    async fn order(&self, order_id: &str) -> Result<OrderCreated, HandlerError> {
        let query = TimelineQuery::partition(order_id)
            .type_prefix(OrderCreated::NAME)
            .newest_first()
            .limit(1);
        let page = self.store.timeline(&query).await?;
        let created = page.events.into_iter().next().ok_or_else(|| {
            HandlerError::permanent(format!("order {order_id} was never created"))
        })?;
        let envelope = created
            .envelope
            .decode::<OrderCreated>()
            .map_err(HandlerError::permanent)?;
        Ok(envelope.payload)
    }
}

/// The carrier's tracking number of a shipment: `JJD` and the shipment id in capitals.
fn tracking_number(shipment_id: &str) -> String {
    let id: String = shipment_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    format!("JJD{id}")
}

/// Where notifications "send" their emails: one line each on a shared writer, the address
/// masked.
#[derive(Clone)]
pub struct Mailer {
    out: Arc<Mutex<dyn Write + Send>>,
}

impl Mailer {
    /// A mailer writing to `out`.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Mailer {
            out: Arc::new(Mutex::new(out)),
        }
    }

    /// Writes one line, as is: narration between the emails.
    ///
    /// # Errors
    ///
    /// When the writer fails.
    pub fn line(&self, line: fmt::Arguments<'_>) -> io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        out.write_fmt(line)?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// "Sends" an email: a line naming the masked address and the subject.
    fn send(&self, to: &str, subject: fmt::Arguments<'_>) -> io::Result<()> {
        self.line(format_args!("  email to {}: {subject}", mask_email(to)))
    }
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer").finish_non_exhaustive()
    }
}

/// Notifications: tells the customer, by email, about their order, invoice and parcel.
///
/// The events about an order name no address except `order.checkout_sent` and
/// `invoice.issued`: the service remembers the addresses they carry, by order, and the
/// order of each invoice. An event about an order whose address it never learnt fails
/// permanently, to the dead letters.
#[derive(Debug)]
pub struct NotificationService {
    mailer: Mailer,
    contacts: Mutex<Contacts>,
}

/// What notifications learnt from the events: addresses by order id, orders by invoice id.
#[derive(Debug, Default)]
struct Contacts {
    emails: HashMap<String, String>,
    orders: HashMap<String, String>,
}

impl NotificationService {
    /// Handles one event of the [`Notifications`] union.
    #[expect(
        clippy::unused_async,
        reason = "a bus handler returns a future; writing a line does not wait"
    )]
    async fn handle(
        self: Arc<Self>,
        envelope: Envelope<Notifications>,
    ) -> Result<(), HandlerError> {
        let mail = &self.mailer;
        match envelope.payload {
            Notifications::CheckoutSent(sent) => {
                self.learn(&sent.order_id, &sent.customer_email, None);
                mail.send(
                    &sent.customer_email,
                    format_args!("complete your order {}", sent.order_id),
                )?;
            }
            Notifications::Paid(paid) => mail.send(
                &self.email(&paid.order_id)?,
                format_args!(
                    "thank you for your order {}: {} received",
                    paid.order_id,
                    money(paid.amount_cents, &paid.currency)
                ),
            )?,
            Notifications::PaymentFailed(failed) => mail.send(
                &self.email(&failed.order_id)?,
                format_args!(
                    "your payment for order {} did not go through ({})",
                    failed.order_id, failed.failure_code
                ),
            )?,
            Notifications::FulfillmentCreated(created) => mail.send(
                &self.email(&created.order_id)?,
                format_args!("your order {} is being packed", created.order_id),
            )?,
            Notifications::Delivered(delivered) => mail.send(
                &self.email(&delivered.order_id)?,
                format_args!("your parcel {} has arrived", delivered.tracking_number),
            )?,
            Notifications::InvoiceIssued(issued) => {
                let (order, invoice) = (&issued.order_id, &issued.invoice_id);
                self.learn(order, &issued.billing_email, Some(invoice));
                mail.send(
                    &issued.billing_email,
                    format_args!(
                        "invoice {invoice} for order {order}: {}, attached",
                        money(issued.amount_cents, &issued.currency)
                    ),
                )?;
            }
            Notifications::InvoicePaid(paid) => mail.send(
                &self.invoice_email(&paid.invoice_id)?,
                format_args!("invoice {} is paid: thank you", paid.invoice_id),
            )?,
            Notifications::InvoiceOverdue(overdue) => mail.send(
                &overdue.billing_email,
                format_args!(
                    "reminder: invoice {} is {} days overdue, {} due",
                    overdue.invoice_id,
                    overdue.days_overdue,
                    money(overdue.amount_due_cents, &overdue.currency)
                ),
            )?,
            Notifications::InvoiceVoided(voided) => mail.send(
                &self.invoice_email(&voided.invoice_id)?,
                format_args!("invoice {} was cancelled", voided.invoice_id),
            )?,
        }
        Ok(())
    }

    fn contacts(&self) -> std::sync::MutexGuard<'_, Contacts> {
        self.contacts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers the address of an order, and the order of an invoice.
    fn learn(&self, order_id: &str, email: &str, invoice_id: Option<&str>) {
        let mut contacts = self.contacts();
        contacts
            .emails
            .insert(order_id.to_owned(), email.to_owned());
        if let Some(invoice_id) = invoice_id {
            contacts
                .orders
                .insert(invoice_id.to_owned(), order_id.to_owned());
        }
    }

    /// The address of an order's customer.
    fn email(&self, order_id: &str) -> Result<String, HandlerError> {
        self.contacts()
            .emails
            .get(order_id)
            .cloned()
            .ok_or_else(|| {
                HandlerError::permanent(format!("no email address known for order {order_id}"))
            })
    }

    /// The address an invoice went to.
    fn invoice_email(&self, invoice_id: &str) -> Result<String, HandlerError> {
        let order_id = self.contacts().orders.get(invoice_id).cloned();
        match order_id {
            Some(order_id) => self.email(&order_id),
            None => Err(HandlerError::permanent(format!(
                "no email address known for invoice {invoice_id}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_as_units_and_cents() {
        assert_eq!(money(5395, "EUR"), "53.95 EUR");
        assert_eq!(money(7, "USD"), "0.07 USD");
    }

    #[test]
    fn masked_addresses_keep_only_the_first_character_and_the_domain() {
        assert_eq!(mask_email("ada@example.com"), "a***@example.com");
        assert_eq!(mask_email("@example.com"), "***@example.com");
        assert_eq!(mask_email("ünï@example.com"), "ü***@example.com");
    }

    #[test]
    fn tracking_numbers_are_alphanumeric_capitals() {
        assert_eq!(tracking_number("shp_ord_7Hq2_1"), "JJDSHPORD7HQ21");
    }
}
