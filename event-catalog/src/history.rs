//! An event's version history: every version of a name, how each is read as the next, what
//! changed field by field, and what the compatibility checker says of each step.

use crate::compat::{self, Breaks, Finding, Mode, Profile};
use crate::model::{Catalog, CatalogEvent, UpcastBy};
use crate::render::fields::{self, FieldRow};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// One step of an event's history: version `from` to version `to` (= `from + 1`).
///
/// ```
/// # use event_core::DomainEvent;
/// # use schemars::JsonSchema;
/// # use serde::{Deserialize, Serialize};
/// use event_catalog::{Catalog, FieldChange, UpcastBy};
///
/// #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// #[event(name = "order.paid")]
/// struct OrderPaidV1 { order_id: String, amount: u64 }
///
/// #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// #[event(name = "order.paid", version = 2, previous = OrderPaidV1)]
/// struct OrderPaid { order_id: String, amount_cents: u64 }
///
/// impl From<OrderPaidV1> for OrderPaid {
///     fn from(v1: OrderPaidV1) -> Self {
///         OrderPaid { order_id: v1.order_id, amount_cents: v1.amount * 100 }
///     }
/// }
///
/// let registry = event_core::Registry::from_descriptors([
///     OrderPaidV1::descriptor(),
///     OrderPaid::descriptor(),
/// ])?;
/// let history = Catalog::from_registry(&registry).history("order.paid");
/// let step = &history[0];
/// assert_eq!((step.from, step.to, step.upcast), (1, 2, Some(UpcastBy::Previous)));
/// assert!(step.changes.contains(&FieldChange::Removed {
///     path: "amount".into(),
///     ty: "integer (uint64)".into(),
/// }));
/// assert!(!step.is_compatible()); // v1 readers cannot read a v2 payload
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionStep {
    /// The older version.
    pub from: u32,
    /// The newer version, `from + 1`.
    pub to: u32,
    /// How a `from` event is read as `to`: the typed `previous` chain or a raw upcaster;
    /// `None` when nothing reads it as `to` (subscriptions must name `from` itself).
    pub upcast: Option<UpcastBy>,
    /// Whether both schemas are in the catalog. When `from`'s Rust type is gone (read by a
    /// raw upcaster), its schema is not, and `changes` and `findings` are empty.
    pub compared: bool,
    /// The field-level differences, by payload path.
    pub changes: Vec<FieldChange>,
    /// What the compatibility checker finds between the two schemas, both directions
    /// ([`Mode::Full`], [`Profile::Serde`]): why the step needed a new version.
    pub findings: Vec<Finding>,
}

impl VersionStep {
    /// Whether the checker finds the two schemas compatible both ways: a payload of either
    /// version reads as the other.
    pub fn is_compatible(&self) -> bool {
        self.findings.is_empty()
    }
}

/// A field's difference between two consecutive versions (paths as in the field table:
/// `a.b`, `items[].sku`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldChange {
    /// The field is new.
    Added {
        /// Where.
        path: String,
        /// Its type, in words.
        ty: String,
        /// Whether it must be present.
        required: bool,
    },
    /// The field is gone.
    Removed {
        /// Where.
        path: String,
        /// The type it had.
        ty: String,
    },
    /// The field's type changed.
    TypeChanged {
        /// Where.
        path: String,
        /// The older type.
        from: String,
        /// The newer type.
        to: String,
    },
    /// The field became required, or optional.
    RequiredChanged {
        /// Where.
        path: String,
        /// Whether it is required now.
        required: bool,
    },
}

impl FieldChange {
    /// The payload path of the field.
    pub fn path(&self) -> &str {
        match self {
            FieldChange::Added { path, .. }
            | FieldChange::Removed { path, .. }
            | FieldChange::TypeChanged { path, .. }
            | FieldChange::RequiredChanged { path, .. } => path,
        }
    }

    /// The change in words, without the path: `added: string, required`.
    pub fn describe(&self) -> String {
        match self {
            FieldChange::Added { ty, required, .. } => {
                format!("added: {ty}, {}", required_word(*required))
            }
            FieldChange::Removed { ty, .. } => format!("removed (was {ty})"),
            FieldChange::TypeChanged { from, to, .. } => format!("type changed: {from} → {to}"),
            FieldChange::RequiredChanged { required, .. } => {
                format!(
                    "now {} (was {})",
                    required_word(*required),
                    required_word(!required)
                )
            }
        }
    }
}

fn required_word(required: bool) -> &'static str {
    if required { "required" } else { "optional" }
}

impl Catalog {
    /// Every version of `name` the catalog knows of, ascending: the versions it has an entry
    /// for, and the older ones their upcast steps read (whose Rust types are gone).
    pub fn versions(&self, name: &str) -> Vec<u32> {
        let mut versions = BTreeSet::new();
        for event in self.events().iter().filter(|e| e.name == name) {
            versions.insert(event.version);
            versions.extend(event.upcasts.iter().map(|step| step.from_version));
        }
        versions.into_iter().collect()
    }

    /// The steps between consecutive versions of `name`, oldest first; empty for an event
    /// with one version (or none).
    pub fn history(&self, name: &str) -> Vec<VersionStep> {
        let versions = self.versions(name);
        versions
            .windows(2)
            .map(|pair| self.step(name, pair[0], pair[1]))
            .collect()
    }

    fn step(&self, name: &str, from: u32, to: u32) -> VersionStep {
        let upcast = self
            .events()
            .iter()
            .filter(|e| e.name == name && e.version > from)
            .flat_map(|e| &e.upcasts)
            .find(|step| step.from_version == from)
            .map(|step| step.by);
        let (older, newer) = (self.get(name, from), self.get(name, to));
        let (changes, findings) = match (older, newer) {
            (Some(older), Some(newer)) => (
                field_changes(older, newer),
                compat::compare_versions(older, newer, Mode::Full, Profile::Serde),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        VersionStep {
            from,
            to,
            upcast,
            compared: older.is_some() && newer.is_some(),
            changes,
            findings,
        }
    }
}

/// The differences between two field tables, by path, in path order.
fn field_changes(older: &CatalogEvent, newer: &CatalogEvent) -> Vec<FieldChange> {
    let by_path = |rows: Vec<FieldRow>| -> BTreeMap<String, FieldRow> {
        rows.into_iter()
            .map(|row| (row.path.clone(), row))
            .collect()
    };
    let (old, new) = (by_path(fields::rows(older)), by_path(fields::rows(newer)));
    let paths: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut changes = Vec::new();
    for path in paths {
        match (old.get(path), new.get(path)) {
            (None, Some(row)) => changes.push(FieldChange::Added {
                path: path.clone(),
                ty: row.ty.clone(),
                required: row.required,
            }),
            (Some(row), None) => changes.push(FieldChange::Removed {
                path: path.clone(),
                ty: row.ty.clone(),
            }),
            (Some(before), Some(after)) => {
                if before.ty != after.ty {
                    changes.push(FieldChange::TypeChanged {
                        path: path.clone(),
                        from: before.ty.clone(),
                        to: after.ty.clone(),
                    });
                }
                if before.required != after.required {
                    changes.push(FieldChange::RequiredChanged {
                        path: path.clone(),
                        required: after.required,
                    });
                }
            }
            (None, None) => {}
        }
    }
    changes
}

/// The "Version history" section of an event's page, in Markdown that is also valid MDX:
/// every name, type and pointer is in inline code, and no other text holds `<`, `>`, `{` or
/// `}`.
pub(crate) fn markdown(catalog: &Catalog, name: &str) -> String {
    let mut out = String::new();
    write_markdown(&mut out, catalog, name).expect("writing to a String cannot fail");
    out
}

fn write_markdown(out: &mut String, catalog: &Catalog, name: &str) -> std::fmt::Result {
    writeln!(out, "## Version history\n")?;
    let history = catalog.history(name);
    if history.is_empty() {
        return writeln!(out, "One version.");
    }
    let versions: Vec<String> = std::iter::once(history[0].from)
        .chain(history.iter().map(|step| step.to))
        .map(|v| format!("v{v}"))
        .collect();
    writeln!(
        out,
        "Versions {}; each step below, newest first, with how the older version is read as \
         the newer, its field changes, and the compatibility checker's verdict (serde \
         profile, both directions).",
        versions.join(", ")
    )?;
    for step in history.iter().rev() {
        writeln!(out, "\n### v{} → v{}\n", step.from, step.to)?;
        let read = match step.upcast {
            Some(UpcastBy::Previous) => format!(
                "A v{} event is read as v{} through `previous` and `From`.",
                step.from, step.to
            ),
            Some(UpcastBy::Raw) => format!(
                "A v{} event is read as v{} by a raw upcaster.",
                step.from, step.to
            ),
            None => format!(
                "A v{} event is not read as v{}: only subscriptions naming v{} receive it.",
                step.from, step.to, step.from
            ),
        };
        writeln!(out, "{read}")?;
        if !step.compared {
            writeln!(
                out,
                "\nThe Rust type of v{} is gone, so its schema is not in the catalog: no field \
                 diff.",
                step.from
            )?;
            continue;
        }
        if step.changes.is_empty() {
            writeln!(out, "\nNo field changed.")?;
        } else {
            writeln!(out, "\n| Field | Change |\n|---|---|")?;
            for change in &step.changes {
                writeln!(out, "| `{}` | {} |", change.path(), change.describe())?;
            }
        }
        write_verdict(out, step)?;
    }
    Ok(())
}

fn write_verdict(out: &mut String, step: &VersionStep) -> std::fmt::Result {
    if step.is_compatible() {
        return writeln!(
            out,
            "\nCompatibility: **compatible** both ways; a payload of either version reads as \
             the other."
        );
    }
    writeln!(out, "\nCompatibility: **breaking**.\n")?;
    writeln!(out, "| Rule | At | Breaks |\n|---|---|---|")?;
    for finding in &step.findings {
        let breaks = match finding.breaks {
            Breaks::Backward => format!("v{} readers, v{} events", step.to, step.from),
            Breaks::Forward => format!("v{} readers, v{} events", step.from, step.to),
        };
        let at = if finding.path.is_empty() {
            "-".to_owned()
        } else {
            format!("`{}`", finding.path)
        };
        writeln!(out, "| `{}` | {at} | {breaks} |", finding.rule)?;
    }
    Ok(())
}
