//! Schema compatibility between two catalogs: which readers break when events change.
//!
//! For each (name, version) in both catalogs the old and new JSON Schemas are compared;
//! a (name, version) that disappears is breaking unless it was deprecated in the old catalog.
//! A new version beside the old one is always fine: that is how breaking changes are made.

mod rules;

use crate::model::{Catalog, CatalogEvent};
use std::fmt;
use std::str::FromStr;

/// Which readers must keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// A reader on the new schema reads events written with the old one (consumers upgrade
    /// first, or replay old events). The default.
    #[default]
    Backward,
    /// A reader on the old schema reads events written with the new one (producers upgrade
    /// first).
    Forward,
    /// Both.
    Full,
}

/// How a reader is assumed to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// As serde reads: unknown fields are ignored unless the type denies them (schemars shows
    /// `#[serde(deny_unknown_fields)]` as `"additionalProperties": false`), and writers send
    /// only the fields their type declares. Adding an optional field is never breaking. The
    /// default.
    #[default]
    Serde,
    /// The schemas alone, as schema registries judge them: an open object may carry any
    /// property, so adding a property to it, removing one, or closing it, is breaking.
    Strict,
}

/// Which readers a finding breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Breaks {
    /// Readers on the new schema cannot read events written with the old one.
    Backward,
    /// Readers on the old schema cannot read events written with the new one.
    Forward,
}

/// A compatibility rule, named in the old → new direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// An event version present in the old catalog is gone, and was not deprecated.
    VersionRemoved,
    /// A property was removed.
    PropertyRemoved,
    /// An optional property was added (breaking under the strict profile, or for readers that
    /// deny unknown fields).
    PropertyAdded,
    /// A required property was added.
    RequiredPropertyAdded,
    /// An optional property became required.
    OptionalMadeRequired,
    /// A required property became optional.
    RequiredMadeOptional,
    /// The type changed to an unrelated one (`string` to `integer`).
    TypeChanged,
    /// The type accepts less: `number` to `integer`, a smaller integer range, tighter length
    /// limits (`String` to `char`, `Vec<T>` to `[T; N]`), a string restricted to an enum.
    TypeNarrowed,
    /// The type accepts more: `integer` to `number`, a larger integer range, looser length
    /// limits, an enum opened up to any string.
    TypeWidened,
    /// `null` is no longer accepted (`Option<T>` became `T`).
    NullableRemoved,
    /// `null` is now accepted (`T` became `Option<T>`).
    NullableAdded,
    /// An enum value (or enum variant) was removed.
    EnumValueRemoved,
    /// An enum value (or enum variant) was added.
    EnumValueAdded,
    /// Fewer additional properties are allowed (`additionalProperties` became `false`, or a
    /// map's value schema narrowed to none).
    AdditionalPropertiesTightened,
    /// More additional properties are allowed.
    AdditionalPropertiesLoosened,
}

impl Rule {
    /// The rule's kebab-case name, as reports print it.
    ///
    /// ```
    /// assert_eq!(event_catalog::Rule::RequiredPropertyAdded.name(), "required-property-added");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Rule::VersionRemoved => "version-removed",
            Rule::PropertyRemoved => "property-removed",
            Rule::PropertyAdded => "property-added",
            Rule::RequiredPropertyAdded => "required-property-added",
            Rule::OptionalMadeRequired => "optional-made-required",
            Rule::RequiredMadeOptional => "required-made-optional",
            Rule::TypeChanged => "type-changed",
            Rule::TypeNarrowed => "type-narrowed",
            Rule::TypeWidened => "type-widened",
            Rule::NullableRemoved => "nullable-removed",
            Rule::NullableAdded => "nullable-added",
            Rule::EnumValueRemoved => "enum-value-removed",
            Rule::EnumValueAdded => "enum-value-added",
            Rule::AdditionalPropertiesTightened => "additional-properties-tightened",
            Rule::AdditionalPropertiesLoosened => "additional-properties-loosened",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One incompatible change of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The event type.
    pub event: String,
    /// The event version.
    pub version: u32,
    /// JSON pointer into the new schema where the change is (into the old schema for what was
    /// removed); empty for the whole event.
    pub pointer: String,
    /// The payload field concerned, as a dotted path (`shipping_address.city`,
    /// `line_items[].sku`); empty for the payload itself.
    pub path: String,
    /// The rule broken.
    pub rule: Rule,
    /// Which readers break.
    pub breaks: Breaks,
    /// What changed, in a sentence.
    pub message: String,
    /// How to make the change compatible.
    pub hint: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let readers = match self.breaks {
            Breaks::Backward => "new readers cannot read old events",
            Breaks::Forward => "old readers cannot read new events",
        };
        let at = if self.pointer.is_empty() {
            String::new()
        } else {
            format!(" at {}", self.pointer)
        };
        write!(
            f,
            "{} v{}{at}: {} [{}; {readers}]\n  fix: {}",
            self.event, self.version, self.message, self.rule, self.hint
        )
    }
}

/// The result of comparing two catalogs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Report {
    /// The incompatible changes, by event, version, pointer and rule.
    pub findings: Vec<Finding>,
    /// Event versions only in the new catalog.
    pub added: Vec<(String, u32)>,
    /// Event versions only in the old catalog (breaking unless deprecated: see `findings`).
    pub removed: Vec<(String, u32)>,
    /// Event versions in both whose catalog entry changed (schema or metadata), compatible or
    /// not.
    pub changed: Vec<(String, u32)>,
}

impl Report {
    /// Whether no finding was made.
    pub fn is_compatible(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, version) in &self.added {
            writeln!(f, "+ {name} v{version}: added")?;
        }
        for (name, version) in &self.removed {
            writeln!(f, "- {name} v{version}: removed")?;
        }
        for (name, version) in &self.changed {
            let breaking = self
                .findings
                .iter()
                .any(|x| &x.event == name && x.version == *version);
            let verdict = if breaking { "breaking" } else { "compatible" };
            writeln!(f, "~ {name} v{version}: changed ({verdict})")?;
        }
        if !self.findings.is_empty() {
            writeln!(f, "\n{} incompatible change(s):", self.findings.len())?;
            for finding in &self.findings {
                writeln!(f, "{finding}")?;
            }
        }
        Ok(())
    }
}

impl Catalog {
    /// Compares two catalogs: the event versions added, removed and changed, and every
    /// incompatible change under `mode` and `profile`.
    ///
    /// ```
    /// use event_catalog::{Catalog, Mode, Profile, Rule};
    /// use serde_json::json;
    ///
    /// let catalog = |schema: serde_json::Value| {
    ///     let event = json!({"name": "order.paid", "version": 1, "description": null,
    ///         "rust_type": "shop::OrderPaid", "source": null, "aggregate": null,
    ///         "consumers": [], "partition_key": null, "pii": [], "deprecated": false,
    ///         "schema": schema});
    ///     Catalog::from_json(&json!({"format": 1, "events": [event]}).to_string())
    /// };
    /// let old = catalog(json!({"type": "object",
    ///     "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}))?;
    /// let new = catalog(json!({"type": "object",
    ///     "properties": {"order_id": {"type": "string"}, "paid_at": {"type": "string"}},
    ///     "required": ["order_id", "paid_at"]}))?;
    ///
    /// let report = Catalog::compare(&old, &new, Mode::Backward, Profile::Serde);
    /// let finding = &report.findings[0];
    /// assert_eq!((finding.event.as_str(), finding.version), ("order.paid", 1));
    /// assert_eq!(finding.rule, Rule::RequiredPropertyAdded);
    /// assert_eq!(finding.pointer, "/properties/paid_at");
    /// assert!(finding.hint.contains("Option<T>"));
    ///
    /// // the same change read by old readers: they ignore the new field
    /// assert!(Catalog::compare(&old, &new, Mode::Forward, Profile::Serde).is_compatible());
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn compare(old: &Catalog, new: &Catalog, mode: Mode, profile: Profile) -> Report {
        let mut report = Report::default();
        for old_event in old.events() {
            let key = (old_event.name.clone(), old_event.version);
            match new.get(&old_event.name, old_event.version) {
                None => {
                    if !old_event.deprecated.is_deprecated() {
                        report.findings.push(version_removed(old_event, new));
                    }
                    report.removed.push(key);
                }
                Some(new_event) => {
                    if new_event != old_event {
                        report.changed.push(key);
                    }
                    report
                        .findings
                        .extend(rules::compare_event(old_event, new_event, mode, profile));
                }
            }
        }
        for new_event in new.events() {
            if old.get(&new_event.name, new_event.version).is_none() {
                report
                    .added
                    .push((new_event.name.clone(), new_event.version));
            }
        }
        report
    }
}

/// The findings between two schemas of one event, as [`Catalog::compare`] judges one
/// (name, version) present in both catalogs; also used between consecutive versions.
pub(crate) fn compare_versions(
    old: &CatalogEvent,
    new: &CatalogEvent,
    mode: Mode,
    profile: Profile,
) -> Vec<Finding> {
    rules::compare_event(old, new, mode, profile)
}

fn version_removed(old: &CatalogEvent, new: &Catalog) -> Finding {
    let newer = new
        .events()
        .iter()
        .filter(|e| e.name == old.name)
        .map(|e| e.version)
        .max();
    let message = match newer {
        Some(v) => format!(
            "version {} is gone (v{v} remains); readers still receive stored v{} events",
            old.version, old.version
        ),
        None => "the event is gone; readers and stored events still use it".to_owned(),
    };
    Finding {
        event: old.name.clone(),
        version: old.version,
        pointer: String::new(),
        path: String::new(),
        rule: Rule::VersionRemoved,
        breaks: Breaks::Backward,
        message,
        hint: format!(
            "keep `{}` and mark it `#[event(deprecated = \"why\")]`; remove it in a later release, once the catalog records it as deprecated",
            short_type(&old.rust_type)
        ),
    }
}

/// The last segment of a Rust type path.
pub(crate) fn short_type(rust_type: &str) -> &str {
    rust_type.rsplit("::").next().unwrap_or(rust_type)
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "backward" => Ok(Mode::Backward),
            "forward" => Ok(Mode::Forward),
            "full" => Ok(Mode::Full),
            other => Err(format!(
                "unknown mode `{other}`: expected backward, forward or full"
            )),
        }
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "serde" => Ok(Profile::Serde),
            "strict" => Ok(Profile::Strict),
            other => Err(format!(
                "unknown profile `{other}`: expected serde or strict"
            )),
        }
    }
}
