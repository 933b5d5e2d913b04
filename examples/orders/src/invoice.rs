//! The `invoice` aggregate: what the customer owes for an order, until it is paid or voided.
//!
//! `BillingService` issues invoices and records payments against them. Events are partitioned
//! by `invoice_id`.
//!
//! `invoice.issued` is at version 2: version 1 carried the amount as a floating-point number of
//! currency units and no currency. [`InvoiceIssuedV1`] stays, deprecated, so that stored v1
//! events still decode and upcast to [`InvoiceIssued`].

use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why an invoice was voided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoidReason {
    /// The order was cancelled before payment.
    OrderCancelled,
    /// Another invoice covers the same order.
    Duplicate,
    /// The invoice was wrong and a corrected one replaces it.
    IssuedInError,
}

/// An invoice for an order was issued to the customer (v1: float amount, no currency).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
// Named `invoice.issued`: the derive drops a last word that spells the version (`V1`).
#[event(
    version = 1,
    source = "billing-service",
    aggregate = "invoice",
    deprecated = "floating-point amounts lose cents; read invoice.issued v2 (amount_cents and currency)"
)]
pub struct InvoiceIssuedV1 {
    /// The new invoice.
    #[event(partition_key)]
    pub invoice_id: String,
    /// The order billed.
    pub order_id: String,
    /// Where the invoice was sent.
    #[event(pii)]
    pub billing_email: String,
    /// The amount due in currency units, like `19.99`; always euros.
    pub amount: f64,
    /// When the invoice was issued (RFC 3339).
    pub issued_at: String,
    /// When payment is due (RFC 3339).
    pub due_at: String,
}

/// An invoice for an order was issued to the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    version = 2,
    previous = InvoiceIssuedV1,
    source = "billing-service",
    aggregate = "invoice"
)]
pub struct InvoiceIssued {
    /// The new invoice.
    #[event(partition_key)]
    pub invoice_id: String,
    /// The order billed.
    pub order_id: String,
    /// Where the invoice was sent.
    #[event(pii)]
    pub billing_email: String,
    /// The amount due, in cents.
    pub amount_cents: u64,
    /// The invoice's currency as an ISO 4217 code.
    pub currency: String,
    /// When the invoice was issued (RFC 3339).
    pub issued_at: String,
    /// When payment is due (RFC 3339).
    pub due_at: String,
}

impl From<InvoiceIssuedV1> for InvoiceIssued {
    /// Upcasts a v1 event: the amount is rounded to cents, and the currency is `EUR`, the only
    /// one billing supported while it published v1.
    fn from(v1: InvoiceIssuedV1) -> Self {
        InvoiceIssued {
            invoice_id: v1.invoice_id,
            order_id: v1.order_id,
            billing_email: v1.billing_email,
            amount_cents: cents_from_units(v1.amount),
            currency: "EUR".to_owned(),
            issued_at: v1.issued_at,
            due_at: v1.due_at,
        }
    }
}

/// Rounds an amount in currency units to whole cents: `19.99` → `1999`.
///
/// Negative amounts and NaN, which v1 never carried, give 0.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a float-to-int `as` saturates: negative and NaN give 0, which is intended"
)]
fn cents_from_units(amount: f64) -> u64 {
    (amount * 100.0).round() as u64
}

/// A payment covered part of an invoice; the rest is still due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "billing-service", aggregate = "invoice")]
pub struct InvoicePartiallyPaid {
    /// The invoice paid.
    #[event(partition_key)]
    pub invoice_id: String,
    /// The payment received.
    pub payment_id: String,
    /// What this payment covered, in cents.
    pub amount_paid_cents: u64,
    /// What is still due after this payment, in cents; more than 0.
    pub amount_due_cents: u64,
    /// The invoice's currency as an ISO 4217 code.
    pub currency: String,
    /// When the payment was received (RFC 3339).
    pub paid_at: String,
}

/// An invoice was paid in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "billing-service", aggregate = "invoice")]
pub struct InvoicePaid {
    /// The invoice paid.
    #[event(partition_key)]
    pub invoice_id: String,
    /// The payment that settled it.
    pub payment_id: String,
    /// The invoice's total, in cents.
    pub amount_cents: u64,
    /// The invoice's currency as an ISO 4217 code.
    pub currency: String,
    /// When the last payment was received (RFC 3339).
    pub paid_at: String,
}

/// An invoice passed its due date with an amount still unpaid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "billing-service", aggregate = "invoice")]
pub struct InvoiceOverdue {
    /// The overdue invoice.
    #[event(partition_key)]
    pub invoice_id: String,
    /// The order billed.
    pub order_id: String,
    /// Where reminders go.
    #[event(pii)]
    pub billing_email: String,
    /// What is still due, in cents.
    pub amount_due_cents: u64,
    /// The invoice's currency as an ISO 4217 code.
    pub currency: String,
    /// When payment was due (RFC 3339).
    pub due_at: String,
    /// Whole days since the due date, at least 1.
    pub days_overdue: u32,
}

/// An invoice was cancelled and is no longer owed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "billing-service", aggregate = "invoice")]
pub struct InvoiceVoided {
    /// The voided invoice.
    #[event(partition_key)]
    pub invoice_id: String,
    /// Why it was voided.
    pub reason: VoidReason,
    /// The invoice replacing it, when it was issued in error.
    pub replaced_by: Option<String>,
    /// When it was voided (RFC 3339).
    pub voided_at: String,
}
