//! [`Format::EventCatalog`](crate::Format::EventCatalog): the catalog as an EventCatalog
//! project folder, MDX pages with YAML frontmatter.
//!
//! - `events/<id>/index.mdx` and `schema.json` for the newest version of each event name,
//!   `events/<id>/versioned/<N>.0.0/` for the older ones ([`event_page`]);
//! - `services/<id>/index.mdx` per source and per consumer, with what it sends and receives
//!   ([`services`]);
//! - `domains/<id>/index.mdx` per aggregate, or per first segment of the event names without
//!   one, with the services that send its events ([`domains`]);
//! - `eventcatalog.config.js`, `package.json`, `.eventcatalogrc.js` and `.gitignore`, written
//!   only when absent ([`mod@scaffold`]).
//!
//! Ids and versions are mapped in [`ids`], frontmatter written in [`yaml`], text escaped for
//! MDX in [`mdx`].

mod domains;
mod event_page;
mod ids;
mod mdx;
mod scaffold;
mod services;
mod yaml;

use super::Rendered;
use crate::error::CatalogError;
use crate::model::{Catalog, CatalogEvent};
use std::fs;
use std::io::Read;
use std::path::Path;

pub(crate) use scaffold::scaffold;

/// The folder of event pages.
const EVENTS: &str = "events";
/// The folder of service pages.
const SERVICES: &str = "services";
/// The folder of domain pages.
const DOMAINS: &str = "domains";
/// The folder, inside an event's, of its older versions.
const VERSIONED: &str = "versioned";
/// The page of a resource, in its folder.
const INDEX: &str = "index.mdx";
/// An event's payload schema, beside its page.
const SCHEMA: &str = "schema.json";

/// Renders every owned file of the EventCatalog folder into `out`.
pub(crate) fn render(catalog: &Catalog, out: &mut Rendered) {
    let events = catalog.events();
    for (i, event) in events.iter().enumerate() {
        // Events are sorted by (name, version): the last of a name is its newest version.
        let newest = events.get(i + 1).is_none_or(|next| next.name != event.name);
        let folder = event_folder(event, newest);
        out.insert(
            format!("{folder}/{INDEX}"),
            event_page::render(catalog, event),
        );
        out.insert(format!("{folder}/{SCHEMA}"), super::schemas::render(event));
    }
    for (id, page) in services::render(catalog) {
        out.insert(format!("{SERVICES}/{id}/{INDEX}"), page);
    }
    for (id, page) in domains::render(catalog) {
        out.insert(format!("{DOMAINS}/{id}/{INDEX}"), page);
    }
}

/// `events/<id>` for the newest version of a name, `events/<id>/versioned/<version>` for an
/// older one.
fn event_folder(event: &CatalogEvent, newest: bool) -> String {
    let id = ids::id(&event.name);
    if newest {
        format!("{EVENTS}/{id}")
    } else {
        format!("{EVENTS}/{id}/{VERSIONED}/{}", ids::version(event.version))
    }
}

/// The files of `dir` this format owns, relative and sorted: each `index.mdx` where a page
/// of this layout goes whose frontmatter opens with the [`yaml::GENERATED`] comment, and the
/// `schema.json` beside such an event page. Pages written by hand, and everything else, are
/// not owned.
pub(crate) fn owned_files(dir: &Path) -> Result<Vec<String>, CatalogError> {
    let mut files = Vec::new();
    for section in [EVENTS, SERVICES, DOMAINS] {
        for id in subdirectories(&dir.join(section))? {
            let folder = format!("{section}/{id}");
            owned_in(dir, &folder, section == EVENTS, &mut files)?;
            if section == EVENTS {
                for version in subdirectories(&dir.join(&folder).join(VERSIONED))? {
                    owned_in(
                        dir,
                        &format!("{folder}/{VERSIONED}/{version}"),
                        true,
                        &mut files,
                    )?;
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The owned files of one resource folder.
fn owned_in(
    dir: &Path,
    folder: &str,
    with_schema: bool,
    files: &mut Vec<String>,
) -> Result<(), CatalogError> {
    if !is_generated(&dir.join(folder).join(INDEX))? {
        return Ok(());
    }
    files.push(format!("{folder}/{INDEX}"));
    if with_schema && dir.join(folder).join(SCHEMA).is_file() {
        files.push(format!("{folder}/{SCHEMA}"));
    }
    Ok(())
}

/// Whether the file exists and starts with the generated frontmatter's first two lines.
fn is_generated(path: &Path) -> Result<bool, CatalogError> {
    let marker = format!("---\n{}\n", yaml::GENERATED);
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(CatalogError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut head = Vec::with_capacity(marker.len());
    file.take(marker.len() as u64)
        .read_to_end(&mut head)
        .map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
    Ok(head == marker.as_bytes())
}

/// The names of the directories in `path` (none when it does not exist), sorted.
fn subdirectories(path: &Path) -> Result<Vec<String>, CatalogError> {
    let read_error = |source| CatalogError::Read {
        path: path.to_owned(),
        source,
    };
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(source) => return Err(read_error(source)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_error)?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            // A name that is not UTF-8 is no folder this crate writes.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}
