//! The `fulfillment` aggregate: the work of picking and packing a paid order in a warehouse.
//!
//! `FulfillmentService` opens a fulfillment when an order is paid. Events are partitioned by
//! `fulfillment_id`.

use crate::order::{Address, LineItem};
use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A paid order was assigned to a warehouse for picking and packing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(source = "fulfillment-service", aggregate = "fulfillment")]
pub struct FulfillmentCreated {
    /// The new fulfillment.
    #[event(partition_key)]
    pub fulfillment_id: String,
    /// The order being fulfilled.
    pub order_id: String,
    /// The warehouse that picks and packs the items.
    pub warehouse_id: String,
    /// What to pick: all of the order's lines, or part of them when it ships in several
    /// fulfillments.
    pub line_items: Vec<LineItem>,
    /// Where the parcels go.
    #[event(pii)]
    pub ship_to: Address,
    /// When the parcels must leave the warehouse to meet the promised delivery (RFC 3339).
    pub ship_by: Option<String>,
    /// When the fulfillment was created (RFC 3339).
    pub created_at: String,
}
