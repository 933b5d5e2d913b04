//! The keys of `#[event(...)]` and `#[union(...)]`, in one place.

use std::fmt;
use syn::{Ident, Path};

/// A key of the `event` or `union` attribute.
#[derive(Copy, Clone)]
pub(crate) struct Symbol(pub(crate) &'static str);

/// The helper attribute itself: `#[event(...)]`.
pub(crate) const EVENT: Symbol = Symbol("event");
/// The helper attribute of `#[derive(EventUnion)]`: `#[union(...)]`.
pub(crate) const UNION: Symbol = Symbol("union");

// Container keys.
pub(crate) const NAME: Symbol = Symbol("name");
pub(crate) const VERSION: Symbol = Symbol("version");
pub(crate) const SOURCE: Symbol = Symbol("source");
pub(crate) const AGGREGATE: Symbol = Symbol("aggregate");
pub(crate) const DESCRIPTION: Symbol = Symbol("description");
pub(crate) const DEPRECATED: Symbol = Symbol("deprecated");
pub(crate) const PREVIOUS: Symbol = Symbol("previous");
pub(crate) const CRATE: Symbol = Symbol("crate");

// Union keys (`crate` too).
pub(crate) const CONSUMER: Symbol = Symbol("consumer");

// Field keys.
pub(crate) const PARTITION_KEY: Symbol = Symbol("partition_key");
pub(crate) const PII: Symbol = Symbol("pii");
pub(crate) const SUBJECT: Symbol = Symbol("subject");

/// Container keys in the order the documentation lists them, for "expected one of" hints.
pub(crate) const CONTAINER_KEYS: &[Symbol] = &[
    NAME,
    VERSION,
    SOURCE,
    AGGREGATE,
    DESCRIPTION,
    DEPRECATED,
    PREVIOUS,
    CRATE,
];

/// Field keys, for "expected one of" hints.
pub(crate) const FIELD_KEYS: &[Symbol] = &[PARTITION_KEY, PII, SUBJECT];

/// Keys of `#[union(...)]` on the enum, in the order the documentation lists them.
pub(crate) const UNION_KEYS: &[Symbol] = &[CONSUMER, CRATE];

/// `` `a`, `b` or `c` `` for an error message.
pub(crate) fn one_of(keys: &[Symbol]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{}`", k.0)).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

impl PartialEq<Symbol> for Ident {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for &Ident {
    fn eq(&self, word: &Symbol) -> bool {
        *self == word.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl PartialEq<Symbol> for &Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str(self.0)
    }
}
