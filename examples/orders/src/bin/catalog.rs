//! The event catalog of the `orders` domain: `generate`, `check` and `diff`.
//!
//! ```text
//! cargo run -p orders --bin catalog -- generate --out examples/orders/catalog
//! cargo run -p orders --bin catalog -- check --out examples/orders/catalog
//! cargo run -p orders --bin catalog -- generate --format eventcatalog --out examples/orders/eventcatalog
//! ```

use orders as _; // link the events
fn main() -> std::process::ExitCode {
    event_catalog::main()
}
