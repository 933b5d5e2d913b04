//! `services/<id>/index.mdx`: a service per name that sends or receives events, with
//! `sends` and `receives` listing each event version by id and version. A name that is both a
//! source and a consumer is one service with both lists.

use super::yaml::Frontmatter;
use super::{event_page, ids, mdx};
use crate::model::{Catalog, CatalogEvent};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Who sends `event`: its producers, the `source` and the services declared with
/// `event_core::produces!` ([`CatalogEvent::producers`]).
///
/// The one place that decides it: the services' `sends` lists and the domains' services
/// come from here.
pub(super) fn senders(event: &CatalogEvent) -> Vec<&str> {
    event.producers()
}

/// Who receives `event`: its consumers.
fn receivers(event: &CatalogEvent) -> impl Iterator<Item = &str> {
    event.consumers.iter().map(String::as_str)
}

/// A service and the event versions it sends and receives, in catalog order.
#[derive(Default)]
struct Service<'a> {
    sends: Vec<&'a CatalogEvent>,
    receives: Vec<&'a CatalogEvent>,
}

/// The pages, (id, contents), of every service.
pub(super) fn render(catalog: &Catalog) -> Vec<(String, String)> {
    let mut services: BTreeMap<&str, Service<'_>> = BTreeMap::new();
    for event in catalog.events() {
        for name in senders(event) {
            services.entry(name).or_default().sends.push(event);
        }
        for name in receivers(event) {
            services.entry(name).or_default().receives.push(event);
        }
    }
    services
        .iter()
        .map(|(name, service)| (ids::id(name), page(name, service)))
        .collect()
}

fn page(name: &str, service: &Service<'_>) -> String {
    let mut front = Frontmatter::new();
    front.string("id", &ids::id(name));
    front.string("name", name);
    front.string("version", &ids::version(1));
    front.string("summary", &summary(service));
    front.maps("sends", &pointers(&service.sends));
    front.maps("receives", &pointers(&service.receives));
    let mut out = front.finish();
    let _ = writeln!(
        out,
        "\nThe {} service, as the event registry knows it: a producer of the events it sends \
         (their `source`, or declared with `event_core::produces!`), a consumer \
         (`#[union(consumer = \"...\")]`) of those it receives.\n",
        mdx::cell(&mdx::code(name))
    );
    table(&mut out, "Sends", &service.sends);
    table(&mut out, "Receives", &service.receives);
    out.push_str("## Producers and consumers\n\n<NodeGraph />\n");
    out
}

fn summary(service: &Service<'_>) -> String {
    let count = |n: usize| match n {
        1 => "1 event".to_owned(),
        n => format!("{n} events"),
    };
    match (service.sends.len(), service.receives.len()) {
        (sends, 0) => format!("Sends {}.", count(sends)),
        (0, receives) => format!("Receives {}.", count(receives)),
        (sends, receives) => format!("Sends {} and receives {}.", count(sends), count(receives)),
    }
}

/// The `sends` or `receives` entries: `id` and `version` of each event version.
fn pointers(events: &[&CatalogEvent]) -> Vec<Vec<(&'static str, String)>> {
    events
        .iter()
        .map(|event| {
            vec![
                ("id", ids::id(&event.name)),
                ("version", ids::version(event.version)),
            ]
        })
        .collect()
}

fn table(out: &mut String, title: &str, events: &[&CatalogEvent]) {
    if events.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## {title}\n\n| Event | Version | Summary |\n|---|---|---|"
    );
    for event in events {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            mdx::cell(&mdx::code(&event.name)),
            event.version,
            mdx::cell(&event_page::summary(event)),
        );
    }
    out.push('\n');
}
