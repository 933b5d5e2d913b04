//! The registry of every event linked into the binary.

use crate::event::{DomainEvent, EventDescriptor};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

/// One event submitted to the link-time registry by the derive. Not public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration {
    descriptor: fn() -> &'static EventDescriptor,
}

impl Registration {
    /// Not public API: used by the derive.
    pub const fn new(descriptor: fn() -> &'static EventDescriptor) -> Self {
        Registration { descriptor }
    }
}

inventory::collect!(Registration);

/// Events registered by hand with [`register`], for targets without link-time collection.
static MANUAL: Mutex<Vec<fn() -> &'static EventDescriptor>> = Mutex::new(Vec::new());

/// Every event linked into the binary, sorted by (name, version).
///
/// Each `#[derive(DomainEvent)]` registers its event before `main` runs, not by a call.
/// Events registered with [`register`] are included too, once each.
///
/// # Errors
///
/// [`RegistryError::Duplicates`] when two Rust types declare the same name and version; the
/// error names both types and where they are defined.
///
/// # Linking
///
/// The registry holds what the linker kept. A crate that nothing in the binary references is
/// not linked, and its events are missing. Reference the crate that defines them, for
/// example in `main.rs`:
///
/// ```text
/// use orders_domain as _; // link the events of `orders_domain`
/// ```
///
/// ```standalone_crate
/// # use event_core::DomainEvent;
/// # use schemars::JsonSchema;
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize, JsonSchema, DomainEvent)]
/// struct OrderPaid { order_id: String }
///
/// let registry = event_core::registry()?;
/// let paid = registry.get("order.paid", 1).expect("linked");
/// assert!(paid.rust_type().ends_with("OrderPaid"));
/// # Ok::<(), event_core::RegistryError>(())
/// ```
pub fn registry() -> Result<Registry, RegistryError> {
    let manual = MANUAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let linked = inventory::iter::<Registration>
        .into_iter()
        .map(|r| (r.descriptor)())
        .chain(manual.iter().map(|descriptor| descriptor()));
    Registry::from_descriptors(linked)
}

/// Adds `E` to the registry by hand.
///
/// Only needed where link-time collection is not available (a target `inventory` does not
/// support) or the linker dropped the defining crate. Registering an event that is also
/// linked is harmless: the registry keeps it once.
///
/// ```standalone_crate
/// # use event_core::DomainEvent;
/// # use schemars::JsonSchema;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, JsonSchema, DomainEvent)]
/// # struct GuildConnected { id: String }
/// event_core::register::<GuildConnected>();
/// assert!(event_core::registry()?.get("guild.connected", 1).is_some());
/// # Ok::<(), event_core::RegistryError>(())
/// ```
pub fn register<E: DomainEvent>() {
    MANUAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(E::descriptor);
}

/// A validated set of event descriptors, sorted by (name, version), each (name, version) once.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    events: Vec<&'static EventDescriptor>,
}

impl Registry {
    /// Builds a registry from descriptors, keeping each descriptor once.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Duplicates`] when two different descriptors share a name and version.
    pub fn from_descriptors(
        descriptors: impl IntoIterator<Item = &'static EventDescriptor>,
    ) -> Result<Self, RegistryError> {
        let mut by_key: BTreeMap<(&str, u32), Vec<&'static EventDescriptor>> = BTreeMap::new();
        for descriptor in descriptors {
            let same = by_key
                .entry((descriptor.name(), descriptor.version()))
                .or_default();
            if !same.iter().any(|d| std::ptr::eq(*d, descriptor)) {
                same.push(descriptor);
            }
        }
        let duplicates: Vec<DuplicateEvent> = by_key
            .values()
            .filter(|same| same.len() > 1)
            .map(|same| {
                let mut same = same.clone();
                same.sort_by_key(|d| (d.rust_type(), d.file(), d.line()));
                DuplicateEvent { definitions: same }
            })
            .collect();
        if !duplicates.is_empty() {
            return Err(RegistryError::Duplicates(duplicates));
        }
        Ok(Registry {
            events: by_key.into_values().flatten().collect(),
        })
    }

    /// The events, sorted by (name, version).
    pub fn events(&self) -> &[&'static EventDescriptor] {
        &self.events
    }

    /// Iterates over the events, sorted by (name, version).
    pub fn iter(&self) -> impl Iterator<Item = &'static EventDescriptor> + '_ {
        self.events.iter().copied()
    }

    /// The event with this name and version.
    pub fn get(&self, name: &str, version: u32) -> Option<&'static EventDescriptor> {
        self.events
            .binary_search_by(|d| (d.name(), d.version()).cmp(&(name, version)))
            .ok()
            .map(|i| self.events[i])
    }

    /// Every version of the event with this name, oldest first.
    pub fn versions<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'static EventDescriptor> + 'a {
        let start = self.events.partition_point(|d| d.name() < name);
        self.events[start..]
            .iter()
            .copied()
            .take_while(move |d| d.name() == name)
    }

    /// How many events there are.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether there are no events at all (often: the domain crate was not linked).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

impl<'a> IntoIterator for &'a Registry {
    type Item = &'static EventDescriptor;
    type IntoIter = std::iter::Copied<std::slice::Iter<'a, &'static EventDescriptor>>;

    fn into_iter(self) -> Self::IntoIter {
        self.events.iter().copied()
    }
}

/// Why the registry could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two or more Rust types declare the same event name and version.
    ///
    /// Consumers could not tell their payloads apart. Rename one of the events, or give the
    /// newer shape the next `version` (keeping the old type as its `previous`).
    #[error("{}", DisplayDuplicates(.0))]
    Duplicates(Vec<DuplicateEvent>),
}

/// One (name, version) declared by several Rust types.
#[derive(Debug, Clone)]
pub struct DuplicateEvent {
    definitions: Vec<&'static EventDescriptor>,
}

impl DuplicateEvent {
    /// The event name they share.
    pub fn name(&self) -> &'static str {
        self.definitions[0].name()
    }

    /// The version they share.
    pub fn version(&self) -> u32 {
        self.definitions[0].version()
    }

    /// Every definition, sorted by Rust type path.
    pub fn definitions(&self) -> &[&'static EventDescriptor] {
        &self.definitions
    }
}

impl fmt::Display for DuplicateEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event `{}` version {} is defined by {} types:",
            self.name(),
            self.version(),
            self.definitions.len()
        )?;
        for (i, d) in self.definitions.iter().enumerate() {
            let sep = if i == 0 { " " } else { " and " };
            write!(f, "{sep}`{}` at {}", d.rust_type(), d.location())?;
        }
        Ok(())
    }
}

struct DisplayDuplicates<'a>(&'a [DuplicateEvent]);

impl fmt::Display for DisplayDuplicates<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, duplicate) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{duplicate}")?;
        }
        f.write_str(": rename one, or bump the version of the newer shape")
    }
}
