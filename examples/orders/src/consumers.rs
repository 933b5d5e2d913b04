//! The services that consume the domain's events, each as the union of the events it handles.
//!
//! Each enum derives [`EventUnion`] with `#[union(consumer = "...")]`,
//! so a handler matches it exhaustively and the event catalog lists the service as a consumer
//! of every event it names.
//!
//! ```
//! use event_core::EventUnion;
//! use orders::consumers::Fulfillment;
//!
//! assert_eq!(Fulfillment::CONSUMER, Some("fulfillment-service"));
//! assert!(Fulfillment::accepts("order.paid", 1));
//! assert_eq!(event_core::consumers_of("order.paid", 1), ["billing-service", "fulfillment-service", "notifications"]);
//! ```

#![allow(
    clippy::large_enum_variant,
    reason = "a union's variants are the events themselves; boxing them would change every handler"
)]

use crate::fulfillment::FulfillmentCreated;
use crate::invoice::{InvoiceIssued, InvoiceOverdue, InvoicePaid, InvoiceVoided};
use crate::order::{
    OrderCheckoutExpired, OrderCheckoutSent, OrderCreated, OrderPaid, OrderPaymentFailed,
};
use crate::shipment::{ShipmentDelivered, ShipmentDrafted};
use event_core::EventUnion;

/// What the fulfillment service reacts to: a paid order opens a fulfillment, a drafted
/// shipment takes its parcel off the packing list.
#[derive(Debug, Clone, EventUnion)]
#[union(consumer = "fulfillment-service")]
pub enum Fulfillment {
    /// Open a fulfillment for the order.
    Paid(OrderPaid),
    /// Mark the parcel as handed over to shipping.
    ShipmentDrafted(ShipmentDrafted),
}

/// What billing reacts to: orders to invoice, and deliveries that start payment terms.
#[derive(Debug, Clone, EventUnion)]
#[union(consumer = "billing-service")]
pub enum Billing {
    /// Prepare the invoice.
    Created(OrderCreated),
    /// Record the payment against the invoice.
    Paid(OrderPaid),
    /// Void the draft invoice.
    CheckoutExpired(OrderCheckoutExpired),
    /// Start the payment terms of an invoice paid on account.
    Delivered(ShipmentDelivered),
}

/// What the customer is told about, by email.
#[derive(Debug, Clone, EventUnion)]
#[union(consumer = "notifications")]
pub enum Notifications {
    /// "Complete your order": the checkout link.
    CheckoutSent(OrderCheckoutSent),
    /// "Thank you for your order".
    Paid(OrderPaid),
    /// "Your payment did not go through".
    PaymentFailed(OrderPaymentFailed),
    /// "Your order is being packed".
    FulfillmentCreated(FulfillmentCreated),
    /// "Your parcel has arrived".
    Delivered(ShipmentDelivered),
    /// The invoice, attached.
    InvoiceIssued(InvoiceIssued),
    /// "Thank you for your payment".
    InvoicePaid(InvoicePaid),
    /// A payment reminder.
    InvoiceOverdue(InvoiceOverdue),
    /// "Your invoice was cancelled".
    InvoiceVoided(InvoiceVoided),
}
