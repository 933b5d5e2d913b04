//! The main example, `cargo run -p orders`: one order's life, from checkout to delivery, on a
//! durable event bus in one SQLite file.
//!
//! - [`services`]: the three consumers of [`consumers`](crate::consumers), each subscribed
//!   with its union and a real handler. Billing issues the invoice when an order is created
//!   and records the payment when it is paid; fulfillment opens a fulfillment for a paid
//!   order, drafts its shipment and buys the label; notifications "emails" the customer (a
//!   line on the output, the address masked).
//! - [`run`]: the script. It plays the storefront and the payment provider, publishing
//!   `order.created`, `order.checkout_sent`, `order.payment_processing` and `order.paid` under
//!   one correlation id; the handlers' follow-ups, which carry that correlation id and name
//!   their cause, take the order on to `shipment.ready`, and the script stands in for the
//!   carrier at the end (`shipment.in_transit`, `shipment.delivered`). Then it shuts the bus
//!   down, which drains every subscription, and reads back what the store holds: a
//!   [`FlowReport`].
//! - [`write_registry_table`]: every event linked into the binary, as a table.
//! - [`http`]: `orders --http ADDR`, the storefront's HTTP API on the same bus: an order's
//!   row and its `order.created` in one sqlx transaction, and the order's timeline.
//!
//! Every step that another one depends on is sequenced by an event, never by a sleep, so the
//! store holds the same events in the same order on every run.
//!
//! ```no_run
//! # #[tokio::main]
//! # async fn main() -> Result<(), orders::app::Error> {
//! let dir = tempfile::tempdir()?;
//! let report = orders::app::run(&dir.path().join("orders.db"), std::io::stdout()).await?;
//! assert!(report.is_complete());
//!
//! let mut out = std::io::stdout();
//! report.write(&mut out)?;
//! orders::app::write_registry_table(&mut out)?;
//! # Ok(())
//! # }
//! ```

mod error;
mod flow;
pub mod http;
mod registry_table;
pub mod services;

pub use error::Error;
pub use flow::{CORRELATION_ID, FlowReport, ORDER_ID, SubscriptionReport, run, run_with_admin};
pub use registry_table::write_registry_table;
