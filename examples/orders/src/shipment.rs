//! The `shipment` aggregate: one parcel on its way from the warehouse to the customer.
//!
//! `ShipmentsService` drafts a shipment per parcel of a fulfillment, buys its label, and relays
//! the carrier's tracking updates. Events are partitioned by `shipment_id`, so tracking updates
//! of one parcel arrive in order.

use crate::order::Address;
use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The carrier that transports a shipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    /// Deutsche Post DHL.
    Dhl,
    /// DPD.
    Dpd,
    /// United Parcel Service.
    Ups,
    /// `FedEx`.
    #[serde(rename = "fedex")]
    FedEx,
    /// United States Postal Service.
    Usps,
}

/// A shipment was drafted for a fulfillment's parcel, before a label is bought.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "shipments-service", aggregate = "shipment")]
pub struct ShipmentDrafted {
    /// The new shipment.
    #[event(partition_key)]
    pub shipment_id: String,
    /// The fulfillment whose parcel this is.
    pub fulfillment_id: String,
    /// The order the parcel belongs to.
    pub order_id: String,
    /// The carrier chosen for the parcel.
    pub carrier: Carrier,
    /// The carrier's service level, like `express`.
    pub service_level: String,
    /// The parcel's weight in grams.
    pub weight_grams: u32,
    /// Where the parcel goes.
    #[event(pii)]
    pub ship_to: Address,
    /// When the shipment was drafted (RFC 3339).
    pub drafted_at: String,
}

/// The shipment's label was bought and the parcel awaits carrier pickup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "shipments-service", aggregate = "shipment")]
pub struct ShipmentReady {
    /// The shipment.
    #[event(partition_key)]
    pub shipment_id: String,
    /// The order the parcel belongs to.
    pub order_id: String,
    /// The carrier that picks the parcel up.
    pub carrier: Carrier,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// The carrier's public tracking page.
    pub tracking_url: String,
    /// The shipping label to print, as a PDF.
    pub label_url: String,
    /// When the label was bought (RFC 3339).
    pub ready_at: String,
}

/// The carrier picked the shipment up or scanned it on its way to the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "shipments-service", aggregate = "shipment")]
pub struct ShipmentInTransit {
    /// The shipment.
    #[event(partition_key)]
    pub shipment_id: String,
    /// The order the parcel belongs to.
    pub order_id: String,
    /// The carrier transporting the parcel.
    pub carrier: Carrier,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// Where the carrier last scanned the parcel, like `Leipzig hub`.
    pub last_location: Option<String>,
    /// The carrier's current delivery estimate (RFC 3339).
    pub estimated_delivery_at: Option<String>,
    /// When the carrier scanned the parcel (RFC 3339).
    pub scanned_at: String,
}

/// The carrier delivered the shipment to the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "shipments-service", aggregate = "shipment")]
pub struct ShipmentDelivered {
    /// The shipment.
    #[event(partition_key)]
    pub shipment_id: String,
    /// The order the parcel belongs to.
    pub order_id: String,
    /// The carrier that delivered the parcel.
    pub carrier: Carrier,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// Who signed for the parcel, when the carrier collected a signature.
    #[event(pii)]
    pub signed_by: Option<String>,
    /// The carrier's proof of delivery (photo or signature), when it offers one.
    pub proof_of_delivery_url: Option<String>,
    /// When the parcel was delivered (RFC 3339).
    pub delivered_at: String,
}

// The carrier's webhook publishes the tracking updates itself (the flow plays it), so the
// catalog lists it beside `shipments-service` as a producer of these two.
event_core::produces!("carrier-webhook": ShipmentInTransit, ShipmentDelivered);
