//! Paths for generated code only: the derives name everything through
//! `::event_core::__private`, so user crates need no direct dependency on inventory and
//! cannot break the expansion by shadowing `Option`, `String` or `Result`.
//!
//! Not public API: anything here may change in any release.

pub use core::any::Any;
pub use core::clone::Clone;
pub use core::convert::From;
pub use core::option::Option::{self, None, Some};
pub use core::primitive::{str, u32};
pub use core::result::Result::{self, Err, Ok};
pub use core::{concat, file, line, module_path, unreachable};
pub use inventory;
pub use schemars;
pub use serde;
pub use serde_json;
pub use std::string::{String, ToString};

pub use crate::event::DescriptorParts;
pub use crate::producer::ProducerRegistration;
pub use crate::registry::Registration;
pub use crate::union::ConsumerRegistration;

/// What a PII field of type `T` reads as once its subject is forgotten: `T::default()` as
/// JSON (`null` if it does not serialize, which its payload would not either).
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `Default`: a `#[event(pii)]` field reads as its type's `Default` once its subject is forgotten",
    label = "this PII field's type has no `Default`",
    note = "derive or implement `Default` for `{Self}`, or make the field an `Option<{Self}>`"
)]
pub trait Erasable {
    /// The JSON of the erased value.
    fn erased_json() -> serde_json::Value;
}

impl<T: Default + serde::Serialize> Erasable for T {
    fn erased_json() -> serde_json::Value {
        serde_json::to_value(T::default()).unwrap_or(serde_json::Value::Null)
    }
}

/// [`Erasable::erased_json`] of `T`, for the derive.
pub fn erased<T: Erasable>() -> serde_json::Value {
    T::erased_json()
}

/// The `JsonSchema` functions of one event type, as pointers.
///
/// The derive hands these to [`root_schema`] for the descriptor's JSON Schema (draft
/// 2020-12), instead of instantiating schemars' generic root schema code once per event: the type's own functions are compiled anyway, and the generic
/// code is then compiled once, here. This halves the derive's compile-time cost.
#[derive(Debug)]
pub struct SchemaFns {
    /// `<T as JsonSchema>::schema_name`.
    pub name: fn() -> std::borrow::Cow<'static, str>,
    /// `<T as JsonSchema>::schema_id`.
    pub id: fn() -> std::borrow::Cow<'static, str>,
    /// `<T as JsonSchema>::json_schema`.
    pub json_schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

std::thread_local! {
    static ROOT: std::cell::Cell<Option<&'static SchemaFns>> = const { std::cell::Cell::new(None) };
}

/// Stands for the type whose functions are in `ROOT` while its root schema is generated.
struct ErasedRoot;

impl ErasedRoot {
    fn fns() -> &'static SchemaFns {
        ROOT.with(std::cell::Cell::get)
            .expect("ErasedRoot is only used inside root_schema")
    }
}

impl schemars::JsonSchema for ErasedRoot {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        (Self::fns().name)()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        (Self::fns().id)()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        (Self::fns().json_schema)(generator)
    }
}

/// The root schema of the type whose functions are `fns`: the same output as
/// `schemars::schema_for!`, which schemars computes from `schema_id`, `schema_name` and `json_schema`
/// alone.
pub fn root_schema(
    fns: &'static SchemaFns,
    settings: &schemars::generate::SchemaSettings,
) -> schemars::Schema {
    /// Puts back the outer root even if a `json_schema` panics.
    struct Restore(Option<&'static SchemaFns>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ROOT.with(|root| root.set(self.0));
        }
    }
    let _restore = Restore(ROOT.with(|root| root.replace(Some(fns))));
    schemars::SchemaGenerator::new(settings.clone()).into_root_schema_for::<ErasedRoot>()
}

/// `previous = Prev` must name the same event one version below; evaluated at compile time.
///
/// # Panics
///
/// At compile time, with a message the compiler shows on the `previous` key, when the names
/// differ or the versions are not consecutive.
pub const fn assert_previous_version(prev_name: &str, prev_version: u32, name: &str, version: u32) {
    assert!(
        const_str_eq(prev_name, name),
        "the `previous` event has another name: it must be an earlier version of this same event"
    );
    let next = match prev_version.checked_add(1) {
        Some(next) => next,
        None => 0,
    };
    assert!(
        next == version,
        "the `previous` event must be the version just below this one (version - 1)"
    );
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Why no variant of a union decodes `event_type` at `version`: `NewerVersion` when the union
/// knows the name but only older versions of it, `UnknownEvent` otherwise.
pub fn unknown_or_newer(
    events: &[(&str, u32)],
    event_type: &str,
    version: u32,
) -> crate::DecodeError {
    let known = events
        .iter()
        .filter(|(name, _)| *name == event_type)
        .map(|(_, v)| *v)
        .max();
    match known {
        Some(known) if version > known => crate::DecodeError::newer(event_type, version, known),
        _ => crate::DecodeError::unknown(event_type, version),
    }
}

/// The variant of a union that receives an older version of one of its events, upcast: the
/// newest version of `event_type` the union names, if it is newer than `version`.
pub fn upcast_target(events: &[(&str, u32)], event_type: &str, version: u32) -> Option<usize> {
    events
        .iter()
        .enumerate()
        .filter(|(_, (name, v))| *name == event_type && *v > version)
        .max_by_key(|(_, (_, v))| *v)
        .map(|(index, _)| index)
}

/// The variant at `index` of a union must carry another event than every variant before it;
/// evaluated at compile time. `same_as[j]` is the message when it repeats variant `j`.
///
/// # Panics
///
/// At compile time, on the repeating variant's type, when two variants carry the same name
/// and version.
pub const fn assert_unique_event(events: &[(&str, u32)], index: usize, same_as: &[&str]) {
    let (name, version) = events[index];
    let mut j = 0;
    while j < index {
        let (earlier_name, earlier_version) = events[j];
        let same = earlier_version == version && const_str_eq(earlier_name, name);
        assert!(!same, "{}", same_as[j]);
        j += 1;
    }
}

/// The string form of a `#[event(partition_key)]` field: its `Display`.
#[diagnostic::on_unimplemented(
    message = "the partition key `{Self}` cannot be turned into a string",
    label = "`{Self}` does not implement `Display`",
    note = "a partition key is shown with `Display`: implement it for `{Self}`, or mark a field of a simpler type"
)]
pub trait PartitionKey {
    /// The key as a string.
    fn partition_key(&self) -> String;
}

impl<T: std::fmt::Display + ?Sized> PartitionKey for T {
    fn partition_key(&self) -> String {
        self.to_string()
    }
}

/// The typed upcast from an event's previous version, `From<Previous> for Event`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` names `{P}` as its `previous` version but cannot be made from it",
    label = "no upcast from `{P}`",
    note = "add `impl From<{P}> for {Self}`, which turns an old event into the new shape"
)]
pub trait Upcast<P> {
    /// Turns the previous version into this one.
    fn upcast(previous: P) -> Self;
}

impl<P, T: From<P>> Upcast<P> for T {
    fn upcast(previous: P) -> Self {
        T::from(previous)
    }
}
