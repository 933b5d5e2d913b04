//! The stale check: render the catalog in memory and compare it byte for byte with the files
//! in a directory.

use crate::error::CatalogError;
use crate::format::Format;
use crate::model::Catalog;
use std::fmt;
use std::path::Path;

/// How the files in a directory differ from a freshly rendered catalog.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Staleness {
    /// Files whose contents differ, with the first differing line.
    pub stale: Vec<StaleFile>,
    /// Files the catalog renders that are not in the directory.
    pub missing: Vec<String>,
    /// Files the format owns (in [`Format::Catalog`], `events/*.md` and `schemas/*.json`) that
    /// the catalog no longer renders: events, services or domains that are gone.
    pub extra: Vec<String>,
}

/// A file whose contents differ from what the catalog renders.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StaleFile {
    /// The path relative to the directory.
    pub path: String,
    /// The first line that differs, from 1.
    pub line: usize,
    /// That line as rendered now (empty past the end).
    pub expected: String,
    /// That line in the file (empty past the end).
    pub found: String,
}

impl Staleness {
    /// Whether the directory holds exactly what the catalog renders.
    pub fn is_current(&self) -> bool {
        self.stale.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.stale {
            writeln!(f, "stale:   {} (line {})", file.path, file.line)?;
            writeln!(f, "           expected: {}", file.expected.trim_end())?;
            writeln!(f, "           found:    {}", file.found.trim_end())?;
        }
        for path in &self.missing {
            writeln!(f, "missing: {path}")?;
        }
        for path in &self.extra {
            writeln!(f, "extra:   {path} (no longer generated)")?;
        }
        Ok(())
    }
}

impl Catalog {
    /// Compares the files in `dir` with what [`write_to`](Catalog::write_to) would write.
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
    /// let dir = std::env::temp_dir().join(format!("event-catalog-stale-{}", std::process::id()));
    /// assert!(!catalog.staleness(&dir)?.is_current()); // nothing there yet
    /// catalog.write_to(&dir)?;
    /// assert!(catalog.staleness(&dir)?.is_current());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`CatalogError::Read`] when a file exists but cannot be read.
    pub fn staleness(&self, dir: impl AsRef<Path>) -> Result<Staleness, CatalogError> {
        self.staleness_as(dir, Format::Catalog)
    }

    /// Compares the files in `dir` with what [`write_as`](Catalog::write_as) would write in
    /// `format`: [`staleness`](Catalog::staleness) for any format. Only the files the format
    /// owns are compared; with [`Format::EventCatalog`], `eventcatalog.config.js` and the other
    /// project files are the user's and never compared, and the pages written by hand are not
    /// reported as extra.
    ///
    /// # Errors
    ///
    /// [`CatalogError::Read`] when a file or folder exists but cannot be read.
    pub fn staleness_as(
        &self,
        dir: impl AsRef<Path>,
        format: Format,
    ) -> Result<Staleness, CatalogError> {
        let dir = dir.as_ref();
        let rendered = self.render_as(format);
        let mut staleness = Staleness::default();
        for (relative, expected) in rendered.iter() {
            let path = dir.join(relative);
            match std::fs::read(&path) {
                Ok(found) if found == expected.as_bytes() => {}
                Ok(found) => {
                    let found = String::from_utf8_lossy(&found);
                    staleness
                        .stale
                        .push(first_difference(relative, expected, &found));
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    staleness.missing.push(relative.to_owned());
                }
                Err(source) => return Err(CatalogError::Read { path, source }),
            }
        }
        staleness.extra = format
            .owned_files(dir)?
            .into_iter()
            .filter(|relative| rendered.get(relative).is_none())
            .collect();
        Ok(staleness)
    }
}

fn first_difference(path: &str, expected: &str, found: &str) -> StaleFile {
    let mut expected_lines = expected.split_inclusive('\n');
    let mut found_lines = found.split_inclusive('\n');
    let mut line = 1;
    loop {
        match (expected_lines.next(), found_lines.next()) {
            (Some(e), Some(f)) if e == f => line += 1,
            (e, f) => {
                return StaleFile {
                    path: path.to_owned(),
                    line,
                    expected: e.unwrap_or_default().to_owned(),
                    found: f.unwrap_or_default().to_owned(),
                };
            }
        }
    }
}
