#!/usr/bin/env python3
"""Generates the two crates of the `#[derive(DomainEvent)]` compile-time benchmark.

    bench_compile_gen.py OUT_DIR EVENT_CORE_PATH [--events N] [--seed S] [--lockfile PATH]

Writes OUT_DIR/with (package `bench-with`) and OUT_DIR/without (package `bench-without`).
Both hold the same N event structs with the same doc comments and the same fields (5 to 8 of
mixed types, some nested), and both depend on event-core, serde and schemars. They differ in
one thing only: `with` adds `DomainEvent` to the derive list plus the `#[event(...)]`
attributes (name, version, source, aggregate, one `partition_key`, one or two `pii`).

Generation is deterministic: a fixed seed gives byte-identical crates. Each crate has its own
`[workspace]` table so that cargo never attaches it to the workspace around it.
"""

import argparse
import os
import random
import shutil

AGGREGATES = [
    ("order", "orders-service"),
    ("customer", "customers-service"),
    ("invoice", "billing-service"),
    ("payment", "payments-service"),
    ("shipment", "logistics-service"),
    ("cart", "storefront-service"),
    ("subscription", "billing-service"),
    ("inventory_item", "warehouse-service"),
]

VERBS = [
    "created", "updated", "cancelled", "confirmed", "archived", "restored", "approved",
    "rejected", "shipped", "delivered", "refunded", "expired", "renewed", "flagged",
]

# Shared nested helper types, deriving the same traits in both crates.
HELPERS = '''\
/// A postal address.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Address {
    /// Street and number.
    pub street: String,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
}

/// An amount of money in minor units.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Money {
    pub amount_cents: u64,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// One line of an order or invoice.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LineItem {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub discount: Option<Money>,
}

/// Who or what caused the event.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    pub id: String,
    pub kind: String,
    pub roles: Vec<String>,
}
'''

# (type, candidate field names, doc comment or None). PII-able fields are flagged.
FIELD_TYPES = [
    ("String", ["customer_email", "display_name", "reason", "note", "phone_number"], "Free text."),
    ("u64", ["amount_cents", "sequence", "quantity_total", "occurred_at_ms"], None),
    ("i32", ["delta", "priority", "retry_count", "adjustment"], "May be negative."),
    ("f64", ["score", "weight_kg", "exchange_rate", "tax_rate"], None),
    ("bool", ["is_test", "is_gift", "notify_customer", "manual"], None),
    ("Option<String>", ["coupon_code", "external_ref", "comment", "ip_address"], "Absent when unknown."),
    ("Vec<String>", ["tags", "labels", "channels", "previous_ids"], None),
    ("BTreeMap<String, u64>", ["counters", "quantities_by_sku", "limits"], "Keyed by name."),
    ("HashMap<String, String>", ["metadata", "attributes", "headers"], None),
    ("Address", ["billing_address", "shipping_address"], "Where it applies."),
    ("Money", ["total", "subtotal", "fee"], None),
    ("Vec<LineItem>", ["items", "lines"], "In the order given by the customer."),
    ("Option<Address>", ["return_address", "pickup_address"], None),
    ("Option<Money>", ["refund", "deposit"], "Present only when charged."),
    ("Actor", ["actor", "approved_by"], None),
]

PII_NAMES = {"customer_email", "display_name", "phone_number", "ip_address",
             "billing_address", "shipping_address", "return_address", "pickup_address"}


def camel(snake):
    return "".join(part.capitalize() for part in snake.split("_"))


def gen_events(n, seed):
    rng = random.Random(seed)
    width = max(3, len(str(n - 1)))
    events = []
    for i in range(n):
        aggregate, source = AGGREGATES[i % len(AGGREGATES)]
        verb = rng.choice(VERBS)
        num = f"{i:0{width}d}"
        ident = f"E{num}{camel(aggregate)}{camel(verb)}"
        name = f"{aggregate}.e{num}_{verb}"
        version = rng.choice([1, 1, 1, 2, 3])
        # The key first, then 4 to 7 more fields: 5 to 8 in all.
        fields = [(f"{aggregate}_id", "String", f"The {aggregate.replace('_', ' ')} this event is about.", True, False)]
        used = {fields[0][0]}
        for ty, names, doc in rng.sample(FIELD_TYPES, rng.randint(4, 7)):
            fname = rng.choice(names)
            if fname in used:
                fname = f"{fname}_{len(used)}"
            used.add(fname)
            fields.append((fname, ty, doc if rng.random() < 0.5 else None, False, fname in PII_NAMES))
        if not any(f[4] for f in fields):
            # Every event marks at least one field as PII.
            j = rng.randrange(1, len(fields))
            fname, ty, doc, key, _ = fields[j]
            fields[j] = (fname, ty, doc, key, True)
        events.append({
            "ident": ident, "name": name, "version": version, "source": source,
            "aggregate": aggregate, "verb": verb, "fields": fields,
        })
    return events


def render_lib(events, with_derive):
    out = [
        "//! Generated by scripts/bench_compile_gen.py; do not edit.",
        "#![allow(dead_code)]",
        "",
        "use schemars::JsonSchema;",
        "use serde::{Deserialize, Serialize};",
        "use std::collections::{BTreeMap, HashMap};",
    ]
    if with_derive:
        out.append("use event_core::DomainEvent;")
    else:
        # Same dependency graph as `with`: event-core is linked but its derive is not used.
        out.append("use event_core as _;")
    out += ["", HELPERS]
    for ev in events:
        agg_words = ev["aggregate"].replace("_", " ")
        article = "An" if agg_words[0] in "aeiou" else "A"
        out.append(f"/// {article} {agg_words} was {ev['verb']} (benchmark event {ev['ident']}).")
        out.append("///")
        out.append(f"/// Published by {ev['source']}.")
        if with_derive:
            out.append("#[derive(Serialize, Deserialize, JsonSchema, DomainEvent)]")
            out.append(
                f'#[event(name = "{ev["name"]}", version = {ev["version"]}, '
                f'source = "{ev["source"]}", aggregate = "{ev["aggregate"]}")]'
            )
        else:
            out.append("#[derive(Serialize, Deserialize, JsonSchema)]")
        out.append(f"pub struct {ev['ident']} {{")
        for fname, ty, doc, key, pii in ev["fields"]:
            if doc:
                out.append(f"    /// {doc}")
            if with_derive and key:
                out.append("    #[event(partition_key)]")
            if with_derive and pii:
                out.append("    #[event(pii)]")
            out.append(f"    pub {fname}: {ty},")
        out.append("}")
        out.append("")
    return "\n".join(out)


def render_manifest(package, event_core):
    core = event_core.replace("\\", "\\\\").replace('"', '\\"')
    return f'''\
[package]
name = "{package}"
version = "0.0.0"
edition = "2024"
publish = false

# Standalone: never a member of an enclosing workspace.
[workspace]

[lib]
path = "src/lib.rs"

[dependencies]
event-core = {{ path = "{core}" }}
serde = {{ version = "1", features = ["derive"] }}
schemars = "1"
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("event_core")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--lockfile", help="Cargo.lock to start from, so versions match the workspace")
    args = parser.parse_args()
    if args.events < 1:
        parser.error("--events must be at least 1")

    events = gen_events(args.events, args.seed)
    for package, dirname, with_derive in [("bench-with", "with", True), ("bench-without", "without", False)]:
        root = os.path.join(args.out_dir, dirname)
        os.makedirs(os.path.join(root, "src"), exist_ok=True)
        with open(os.path.join(root, "Cargo.toml"), "w") as f:
            f.write(render_manifest(package, os.path.abspath(args.event_core)))
        with open(os.path.join(root, "src", "lib.rs"), "w") as f:
            f.write(render_lib(events, with_derive))
        if args.lockfile:
            shutil.copyfile(args.lockfile, os.path.join(root, "Cargo.lock"))


if __name__ == "__main__":
    main()
