//! `catalog.json`: the machine-readable catalog, read back by `check` and `diff`.

use crate::model::Catalog;

/// `{"format":1,"events":[...]}`, pretty, keys sorted, events by name then version.
pub(super) fn render(catalog: &Catalog) -> String {
    catalog.to_json()
}
