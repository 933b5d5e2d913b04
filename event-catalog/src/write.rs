//! Writing a rendered catalog to a directory: every file rendered in memory first, each file
//! replaced whole, stale files of removed events deleted.

use crate::error::CatalogError;
use crate::format::Format;
use crate::model::Catalog;
use crate::render::{EVENTS_DIR, Rendered, SCHEMAS_DIR};
use std::fs;
use std::path::{Path, PathBuf};

/// What [`Catalog::write_to`] or [`Catalog::write_as`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WriteSummary {
    /// Files written because they were new or different, relative to the directory; with
    /// [`Format::EventCatalog`], also the project files created because they were absent.
    pub written: Vec<String>,
    /// Files already up to date, left untouched.
    pub unchanged: Vec<String>,
    /// Files the format owns but no longer renders (of events, services or domains that are
    /// gone), deleted.
    pub removed: Vec<String>,
}

impl Catalog {
    /// Renders the catalog and writes it to `dir`, creating it if needed.
    ///
    /// Everything is rendered in memory before the first write. Each file is written beside
    /// its target and renamed over it, so no file is ever half-written; files whose contents
    /// are already right are not touched. Files this crate owns but no longer renders
    /// (`events/*.md` and `schemas/*.json` of events gone from the catalog) are deleted;
    /// anything else in `dir` is left alone.
    ///
    /// ```
    /// # use event_core::DomainEvent;
    /// # use schemars::JsonSchema;
    /// # use serde::{Deserialize, Serialize};
    /// # /// An order was paid.
    /// # #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    /// # #[event(name = "order.paid")]
    /// # struct OrderPaid { order_id: String }
    /// let registry = event_core::Registry::from_descriptors([OrderPaid::descriptor()])?;
    /// let catalog = event_catalog::Catalog::from_registry(&registry);
    /// let dir = std::env::temp_dir().join(format!("event-catalog-doc-{}", std::process::id()));
    /// let summary = catalog.write_to(&dir)?;
    /// assert!(summary.written.contains(&"events/order.paid.v1.md".to_owned()));
    /// assert!(catalog.write_to(&dir)?.written.is_empty()); // a rerun changes nothing
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`CatalogError::Write`] when a directory or file cannot be written,
    /// [`CatalogError::Read`] when an existing directory cannot be listed.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<WriteSummary, CatalogError> {
        self.write_as(dir, Format::Catalog)
    }

    /// Renders the catalog in `format` and writes it to `dir`, creating it if needed:
    /// [`write_to`](Catalog::write_to) for any format.
    ///
    /// The files the format owns are written as `write_to` writes them (rendered in memory
    /// first, each replaced whole, untouched when already right), and those it owns but no
    /// longer renders are deleted, with the folders they leave empty. With
    /// [`Format::EventCatalog`], `eventcatalog.config.js`, `package.json`, `.eventcatalogrc.js`
    /// and `.gitignore` are written only when absent: they are the user's after that.
    ///
    /// ```
    /// # use event_core::DomainEvent;
    /// # use schemars::JsonSchema;
    /// # use serde::{Deserialize, Serialize};
    /// # /// An order was paid.
    /// # #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
    /// # #[event(name = "order.paid", source = "payments")]
    /// # struct OrderPaid { order_id: String }
    /// use event_catalog::{Catalog, Format};
    /// let registry = event_core::Registry::from_descriptors([OrderPaid::descriptor()])?;
    /// let catalog = Catalog::from_registry(&registry);
    /// let dir = std::env::temp_dir().join(format!("event-catalog-ec-doc-{}", std::process::id()));
    /// let summary = catalog.write_as(&dir, Format::EventCatalog)?;
    /// assert!(summary.written.contains(&"events/order.paid/index.mdx".to_owned()));
    /// assert!(summary.written.contains(&"eventcatalog.config.js".to_owned()));
    /// assert!(catalog.write_as(&dir, Format::EventCatalog)?.written.is_empty());
    /// assert!(catalog.staleness_as(&dir, Format::EventCatalog)?.is_current());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`CatalogError::Write`] when a directory or file cannot be written,
    /// [`CatalogError::Read`] when an existing directory or page cannot be read.
    pub fn write_as(
        &self,
        dir: impl AsRef<Path>,
        format: Format,
    ) -> Result<WriteSummary, CatalogError> {
        write_rendered(&self.render_as(format), dir.as_ref(), format)
    }
}

fn write_rendered(
    rendered: &Rendered,
    dir: &Path,
    format: Format,
) -> Result<WriteSummary, CatalogError> {
    let mut summary = WriteSummary::default();
    for sub in format.base_dirs() {
        create_dir(&dir.join(sub))?;
    }
    for (relative, contents) in rendered.iter() {
        let path = dir.join(relative);
        if fs::read(&path).is_ok_and(|old| old == contents.as_bytes()) {
            summary.unchanged.push(relative.to_owned());
            continue;
        }
        if let Some(parent) = path.parent() {
            create_dir(parent)?;
        }
        replace(&path, contents.as_bytes())?;
        summary.written.push(relative.to_owned());
    }
    for (relative, contents) in format.scaffold() {
        let path = dir.join(relative);
        match fs::symlink_metadata(&path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                replace(&path, contents.as_bytes())?;
                summary.written.push(relative.to_owned());
            }
            Err(source) => return Err(CatalogError::Read { path, source }),
            Ok(_) => {}
        }
    }
    for relative in format.owned_files(dir)? {
        if rendered.get(&relative).is_none() {
            let path = dir.join(&relative);
            fs::remove_file(&path).map_err(|source| CatalogError::Write { path, source })?;
            remove_empty_parents(dir, &relative);
            summary.removed.push(relative);
        }
    }
    summary.written.sort();
    Ok(summary)
}

fn create_dir(path: &Path) -> Result<(), CatalogError> {
    fs::create_dir_all(path).map_err(|source| CatalogError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Removes the folders of `relative`, deepest first, that its removal left empty, up to (not
/// including) its top-level folder (`events/`...). Best effort: a folder that is not empty,
/// or cannot be removed, stays.
fn remove_empty_parents(dir: &Path, relative: &str) {
    let mut folders: Vec<&str> = relative.split('/').collect();
    folders.pop(); // the file
    while folders.len() > 1 {
        if fs::remove_dir(dir.join(folders.join("/"))).is_err() {
            return;
        }
        folders.pop();
    }
}

/// Writes `contents` beside `path`, then renames it over `path`.
fn replace(path: &Path, contents: &[u8]) -> Result<(), CatalogError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = fs::write(&temp, contents).and_then(|()| fs::rename(&temp, path));
    result.map_err(|source| {
        let _ = fs::remove_file(&temp);
        CatalogError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

/// The files of `dir` this crate owns: `events/*.md` and `schemas/*.json`, relative and
/// sorted. The top-level files are always rendered, so they are never stale.
pub(crate) fn owned_files(dir: &Path) -> Result<Vec<String>, CatalogError> {
    let mut files = Vec::new();
    for (sub, extension) in [(EVENTS_DIR, "md"), (SCHEMAS_DIR, "json")] {
        let path = dir.join(sub);
        let entries = match fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(CatalogError::Read { path, source }),
        };
        for entry in entries {
            let entry = entry.map_err(|source| CatalogError::Read {
                path: path.clone(),
                source,
            })?;
            let name = PathBuf::from(entry.file_name());
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file && name.extension().is_some_and(|e| e == extension) {
                files.push(format!("{sub}/{}", name.display()));
            }
        }
    }
    files.sort();
    Ok(files)
}
