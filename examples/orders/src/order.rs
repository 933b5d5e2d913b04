//! The `order` aggregate: an order from creation through checkout and payment.
//!
//! `OrdersService` publishes the order's creation and its checkout link; the payments webhook
//! listener translates the payment provider's callbacks into the payment events. Every event is
//! partitioned by `order_id`, so consumers see one order's history in order.
//!
//! Also home to the value types the other aggregates reuse: [`LineItem`] and [`Address`].

use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One line of an order: a product and how many of it, at the price when it was ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LineItem {
    /// The stock keeping unit of the product.
    pub sku: String,
    /// How many units were ordered, at least 1.
    pub quantity: u32,
    /// The price of one unit in minor units (cents) of the order's currency.
    pub unit_price_cents: u64,
}

/// A postal address to ship to. Personal data as a whole; its `Default` (all empty) is what
/// it reads as once its customer is forgotten.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Address {
    /// The recipient's full name.
    pub name: String,
    /// The company at the address, for business deliveries.
    pub company: Option<String>,
    /// Street and number.
    pub line1: String,
    /// Apartment, suite, floor or building.
    pub line2: Option<String>,
    /// City or town.
    pub city: String,
    /// State, province or region, where the country uses one.
    pub region: Option<String>,
    /// Postal or ZIP code.
    pub postal_code: String,
    /// Country as an ISO 3166-1 alpha-2 code, like `DE`.
    pub country: String,
    /// A phone number for the carrier, in E.164 format.
    pub phone: Option<String>,
}

/// How the customer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Credit or debit card.
    Card,
    /// Apple Pay wallet.
    ApplePay,
    /// Google Pay wallet.
    GooglePay,
    /// `PayPal` account.
    #[serde(rename = "paypal")]
    PayPal,
    /// SEPA direct debit; settles after several days.
    SepaDebit,
    /// Bank transfer against the invoice.
    BankTransfer,
}

/// A customer placed an order, which now awaits checkout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "orders-service", aggregate = "order")]
pub struct OrderCreated {
    /// The new order.
    #[event(partition_key)]
    pub order_id: String,
    /// The customer account that placed the order: the data subject of its personal
    /// fields (with field encryption, their key is the customer's).
    #[event(subject)]
    pub customer_id: String,
    /// Where order and payment emails go.
    #[event(pii)]
    pub customer_email: String,
    /// The customer's full name.
    #[event(pii)]
    pub customer_name: String,
    /// What was ordered, at least one line.
    pub line_items: Vec<LineItem>,
    /// Sum of the line items, in cents.
    pub subtotal_cents: u64,
    /// Shipping cost, in cents.
    pub shipping_cents: u64,
    /// Tax included in the total, in cents.
    pub tax_cents: u64,
    /// What the customer pays: subtotal plus shipping plus tax, in cents.
    pub total_cents: u64,
    /// The order's currency as an ISO 4217 code, like `EUR`.
    pub currency: String,
    /// Where the order ships to.
    #[event(pii)]
    pub shipping_address: Address,
    /// When the order was placed (RFC 3339).
    pub created_at: String,
}

/// A checkout link for the order was created and sent to the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "orders-service", aggregate = "order")]
pub struct OrderCheckoutSent {
    /// The order being checked out.
    #[event(partition_key)]
    pub order_id: String,
    /// The payment provider's checkout session.
    pub checkout_session_id: String,
    /// Where the link was sent.
    #[event(pii)]
    pub customer_email: String,
    /// The hosted checkout page the customer pays on.
    pub checkout_url: String,
    /// When the link stops working (RFC 3339).
    pub expires_at: String,
    /// When the link was sent (RFC 3339).
    pub sent_at: String,
}

/// The payment provider accepted the order's payment but has not settled it yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "payments-webhook", aggregate = "order")]
pub struct OrderPaymentProcessing {
    /// The order being paid.
    #[event(partition_key)]
    pub order_id: String,
    /// The payment provider's payment.
    pub payment_id: String,
    /// How the customer pays.
    pub method: PaymentMethod,
    /// The amount being paid, in cents.
    pub amount_cents: u64,
    /// The payment's currency as an ISO 4217 code.
    pub currency: String,
    /// When the provider reported the payment as processing (RFC 3339).
    pub received_at: String,
}

/// The order's payment succeeded and the money is captured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "payments-webhook", aggregate = "order")]
pub struct OrderPaid {
    /// The order that was paid.
    #[event(partition_key)]
    pub order_id: String,
    /// The payment provider's payment.
    pub payment_id: String,
    /// How the customer paid.
    pub method: PaymentMethod,
    /// The amount captured, in cents.
    pub amount_cents: u64,
    /// The payment's currency as an ISO 4217 code.
    pub currency: String,
    /// The provider's receipt page, when it offers one.
    pub receipt_url: Option<String>,
    /// When the payment succeeded (RFC 3339).
    pub paid_at: String,
}

/// The order's payment was declined or failed; the order stays unpaid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "payments-webhook", aggregate = "order")]
pub struct OrderPaymentFailed {
    /// The order whose payment failed.
    #[event(partition_key)]
    pub order_id: String,
    /// The payment provider's payment.
    pub payment_id: String,
    /// How the customer tried to pay.
    pub method: PaymentMethod,
    /// The amount attempted, in cents.
    pub amount_cents: u64,
    /// The payment's currency as an ISO 4217 code.
    pub currency: String,
    /// The provider's machine-readable reason, like `card_declined`.
    pub failure_code: String,
    /// The provider's explanation, for support staff.
    pub failure_message: Option<String>,
    /// When the payment failed (RFC 3339).
    pub failed_at: String,
}

/// The order's checkout link expired before the customer paid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "payments-webhook", aggregate = "order")]
pub struct OrderCheckoutExpired {
    /// The order left unpaid.
    #[event(partition_key)]
    pub order_id: String,
    /// The payment provider's checkout session that expired.
    pub checkout_session_id: String,
    /// When the session expired (RFC 3339).
    pub expired_at: String,
}
