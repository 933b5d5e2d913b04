#!/usr/bin/env python3
"""Generates the crate of the event-catalog benchmark: N events and a catalog binary.

    bench_catalog_gen.py OUT_DIR WORKSPACE_DIR [--events N] [--seed S] [--lockfile PATH]

Writes OUT_DIR (package `bench-catalog`): src/lib.rs holds N event structs from the
compile-time benchmark's generator (scripts/bench_compile_gen.py: 5 to 8 fields of mixed types,
nested structs, Options, Vecs, maps), with two enum types mixed into the field types, and three
consumer unions over the first events; src/main.rs is the three-line catalog binary. Depends on
this repository's event-core and event-catalog by path. Deterministic for a given seed.
"""

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_compile_gen as gen  # noqa: E402

ENUMS = '''
/// Where a record stands.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Just created.
    Pending,
    /// Being worked on.
    Active,
    /// Done.
    Closed,
}

/// How something was paid, with data.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tender {
    /// A card payment.
    Card { last4: String, network: Option<String> },
    /// A bank transfer.
    Transfer { iban: String },
    /// Cash.
    Cash,
}
'''

EXTRA_FIELD_TYPES = [
    ("Status", ["status", "state"], "The record's status."),
    ("Option<Status>", ["previous_status"], None),
    ("Tender", ["tender", "payment_method"], "How it was paid."),
    ("Vec<Status>", ["history"], None),
]


def render_unions(events):
    out = ["", "use event_core::EventUnion;", ""]
    for u, consumer in enumerate(["audit-service", "analytics", "notifications"]):
        members = events[u * 20:u * 20 + 40]
        out.append(f'#[derive(EventUnion)]\n#[union(consumer = "{consumer}")]')
        out.append(f"pub enum Consumer{u} {{")
        for ev in members:
            out.append(f"    {ev['ident']}({ev['ident']}),")
        out.append("}")
        out.append("")
    return "\n".join(out)


def render_manifest(workspace):
    ws = os.path.abspath(workspace).replace("\\", "\\\\").replace('"', '\\"')
    return f'''\
[package]
name = "bench-catalog"
version = "0.0.0"
edition = "2024"
publish = false

# Standalone: never a member of an enclosing workspace.
[workspace]

[dependencies]
event-core = {{ path = "{ws}/event-core" }}
event-catalog = {{ path = "{ws}/event-catalog" }}
serde = {{ version = "1", features = ["derive"] }}
schemars = "1"

[profile.release]
debug = false
'''


MAIN = '''\
//! The catalog binary of the benchmark crate.
use bench_catalog as _; // link the events
fn main() -> std::process::ExitCode {
    event_catalog::main()
}
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("workspace")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--lockfile", help="Cargo.lock to start from, so versions match the workspace")
    args = parser.parse_args()
    if args.events < 1:
        parser.error("--events must be at least 1")

    gen.FIELD_TYPES = gen.FIELD_TYPES + EXTRA_FIELD_TYPES
    events = gen.gen_events(args.events, args.seed)
    lib = gen.render_lib(events, True) + ENUMS + render_unions(events)
    os.makedirs(os.path.join(args.out_dir, "src"), exist_ok=True)
    with open(os.path.join(args.out_dir, "Cargo.toml"), "w") as f:
        f.write(render_manifest(args.workspace))
    with open(os.path.join(args.out_dir, "src", "lib.rs"), "w") as f:
        f.write(lib)
    with open(os.path.join(args.out_dir, "src", "main.rs"), "w") as f:
        f.write(MAIN)
    if args.lockfile:
        shutil.copyfile(args.lockfile, os.path.join(args.out_dir, "Cargo.lock"))


if __name__ == "__main__":
    main()
