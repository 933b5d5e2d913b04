//! Errors of reading, writing and checking a catalog.

use std::path::{Path, PathBuf};

/// Why a catalog could not be read, written or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A file or directory could not be read (missing, unreadable).
    ///
    /// Check the path; generate the catalog first if it does not exist yet.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A `catalog.json` is not valid JSON or not a catalog of format 1.
    ///
    /// Fix the file at the line and column given, or generate it again.
    #[error("`{}` is not a valid catalog.json (line {line}, column {column})", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line of the error, from 1.
        line: usize,
        /// The column of the error, from 1.
        column: usize,
        /// What `serde_json` said.
        #[source]
        source: serde_json::Error,
    },
    /// A file or directory could not be written.
    ///
    /// Files already replaced hold their new contents, the others their old ones; each file is
    /// replaced whole (written beside, then renamed), never left half-written.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The linked registry is invalid (two types declare the same event).
    #[error(transparent)]
    Registry(#[from] event_core::RegistryError),
}

impl CatalogError {
    pub(crate) fn parse(path: &Path, source: serde_json::Error) -> Self {
        CatalogError::Parse {
            path: path.to_owned(),
            line: source.line(),
            column: source.column(),
            source,
        }
    }
}
