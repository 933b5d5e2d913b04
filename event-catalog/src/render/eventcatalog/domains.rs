//! `domains/<id>/index.mdx`: a domain per aggregate, and per first segment of the names of
//! events without one (`order.created` → `order`), listing in `services` the services that
//! send its events.

use super::services::senders;
use super::yaml::Frontmatter;
use super::{event_page, ids, mdx};
use crate::model::{Catalog, CatalogEvent};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// The domain of an event version: its aggregate, else the first segment of its name.
fn domain_of(event: &CatalogEvent) -> &str {
    match event.aggregate.as_deref() {
        Some(aggregate) if !aggregate.trim().is_empty() => aggregate,
        _ => event.name.split('.').next().unwrap_or(&event.name),
    }
}

/// A domain's event versions, in catalog order, and the services sending them.
#[derive(Default)]
struct Domain<'a> {
    events: Vec<&'a CatalogEvent>,
    services: BTreeSet<&'a str>,
}

/// The pages, (id, contents), of every domain.
pub(super) fn render(catalog: &Catalog) -> Vec<(String, String)> {
    let mut domains: BTreeMap<&str, Domain<'_>> = BTreeMap::new();
    for event in catalog.events() {
        let domain = domains.entry(domain_of(event)).or_default();
        domain.events.push(event);
        domain.services.extend(senders(event));
    }
    domains
        .iter()
        .map(|(name, domain)| (ids::id(name), page(name, domain)))
        .collect()
}

fn page(name: &str, domain: &Domain<'_>) -> String {
    let mut front = Frontmatter::new();
    front.string("id", &ids::id(name));
    front.string("name", name);
    front.string("version", &ids::version(1));
    front.string("summary", &summary(name, domain));
    let services: Vec<Vec<(&str, String)>> = domain
        .services
        .iter()
        .map(|service| vec![("id", ids::id(service))])
        .collect();
    front.maps("services", &services);
    let mut out = front.finish();
    let _ = writeln!(
        out,
        "\nThe events of the {} aggregate, and those named {} that declare no aggregate, with \
         the services that send them.\n",
        mdx::cell(&mdx::code(name)),
        mdx::cell(&mdx::code(&format!("{name}.*"))),
    );
    out.push_str("## Events\n\n| Event | Version | Sent by | Summary |\n|---|---|---|---|\n");
    for event in &domain.events {
        let sent_by: Vec<String> = senders(event)
            .into_iter()
            .map(|s| mdx::cell(&mdx::code(s)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            mdx::cell(&mdx::code(&event.name)),
            event.version,
            if sent_by.is_empty() {
                "-".to_owned()
            } else {
                sent_by.join(", ")
            },
            mdx::cell(&event_page::summary(event)),
        );
    }
    out.push_str("\n## Services and events\n\n<NodeGraph />\n");
    out
}

fn summary(name: &str, domain: &Domain<'_>) -> String {
    let events = match domain.events.len() {
        1 => "1 event".to_owned(),
        n => format!("{n} events"),
    };
    match domain.services.len() {
        0 => format!("The {name} domain: {events}."),
        1 => format!("The {name} domain: {events}, sent by 1 service."),
        n => format!("The {name} domain: {events}, sent by {n} services."),
    }
}
