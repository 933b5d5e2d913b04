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
/// Each `#[derive(Clone, DomainEvent)]` registers its event before `main` runs, not by a call.
/// Events registered with [`register`] are included too, once each.
///
/// # Errors
///
/// [`RegistryError::Duplicates`] when two Rust types declare the same name and version; the
/// error names both types and where they are defined. [`RegistryError::BrokenChains`] when
/// two versions of an event are linked in but not to each other (a missing version between
/// them, or a newer one without `previous`): readers of the newer one could not read the
/// older one's events.
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
/// #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
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

/// Every descriptor linked in or registered by hand, unchecked (duplicates included).
pub(crate) fn descriptors() -> Vec<&'static EventDescriptor> {
    let manual = MANUAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    inventory::iter::<Registration>
        .into_iter()
        .map(|r| (r.descriptor)())
        .chain(manual.iter().map(|descriptor| descriptor()))
        .collect()
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
/// # #[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
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
    /// [`RegistryError::Duplicates`] when two different descriptors share a name and version;
    /// [`RegistryError::BrokenChains`] when consecutive versions of an event are not linked
    /// by `previous`.
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
        let events: Vec<&'static EventDescriptor> = by_key.into_values().flatten().collect();
        let raw = crate::upcast::raw_upcasters();
        let broken = broken_chains(&events, &raw);
        if !broken.is_empty() {
            return Err(RegistryError::BrokenChains(broken));
        }
        let misplaced = misplaced_upcasters(&events, &raw);
        if !misplaced.is_empty() {
            return Err(RegistryError::RawUpcasters(misplaced));
        }
        Ok(Registry { events })
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
    /// The versions of an event do not form one chain: a version is missing between two
    /// that are linked in, or a version does not name the one below it as `previous`.
    ///
    /// A reader of the newest version could not read events stored at the older one. Keep
    /// every version from the oldest linked one up, each naming the one below with
    /// `previous = ...` and a `From` upcast; or drop the older types altogether.
    #[error("{}", DisplayBroken(.0))]
    BrokenChains(Vec<BrokenChain>),
    /// Raw upcasters that do not fit their event's version chain
    /// ([`raw_upcaster!`](crate::raw_upcaster)): each message names the event, the version
    /// and the fix.
    #[error("{}", .0.join("; "))]
    RawUpcasters(Vec<String>),
}

/// Two consecutive linked versions of an event that are not linked to each other.
#[derive(Debug, Clone)]
pub struct BrokenChain {
    older: &'static EventDescriptor,
    newer: &'static EventDescriptor,
}

impl BrokenChain {
    /// The event name.
    pub fn name(&self) -> &'static str {
        self.newer.name()
    }

    /// The older version's definition.
    pub fn older(&self) -> &'static EventDescriptor {
        self.older
    }

    /// The newer version's definition, which does not reach the older one.
    pub fn newer(&self) -> &'static EventDescriptor {
        self.newer
    }
}

impl fmt::Display for BrokenChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (older, newer) = (self.older, self.newer);
        if newer.version() > older.version() + 1 {
            write!(
                f,
                "event `{}` has versions {} (`{}` at {}) and {} (`{}` at {}) but none between: \
                 add the missing versions, each naming the one below as `previous`",
                newer.name(),
                older.version(),
                older.rust_type(),
                older.location(),
                newer.version(),
                newer.rust_type(),
                newer.location(),
            )
        } else {
            write!(
                f,
                "event `{}` version {} (`{}` at {}) does not name version {} (`{}`) as its \
                 `previous`: add `previous = {}` and `impl From<{}> for {}`",
                newer.name(),
                newer.version(),
                newer.rust_type(),
                newer.location(),
                older.version(),
                older.rust_type(),
                short(older.rust_type()),
                short(older.rust_type()),
                short(newer.rust_type()),
            )
        }
    }
}

/// The last segment of a type path.
fn short(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

/// Consecutive linked versions of one name (sorted input) whose newer one does not name the
/// older one as `previous`, or that have a gap between them.
fn broken_chains(
    events: &[&'static EventDescriptor],
    raw: &[crate::upcast::RawUpcaster],
) -> Vec<BrokenChain> {
    let has_raw = |name: &str, version: u32| {
        raw.iter()
            .any(|u| u.name() == name && u.from_version() == version)
    };
    events
        .windows(2)
        .filter(|pair| pair[0].name() == pair[1].name())
        .filter(|pair| {
            let (older, newer) = (pair[0], pair[1]);
            let linked = newer
                .previous()
                .is_some_and(|previous| std::ptr::eq(previous, older));
            // Raw upcasters may bridge the versions, from the older one up to the newer.
            let bridged = newer.previous().is_none()
                && (older.version()..newer.version()).all(|v| has_raw(newer.name(), v));
            !bridged && (newer.version() != older.version() + 1 || !linked)
        })
        .map(|pair| BrokenChain {
            older: pair[0],
            newer: pair[1],
        })
        .collect()
}

/// Raw upcasters that do not fit their chain: one registered twice with other functions,
/// one beside a typed `previous` link for the same step (two ways from one version to the
/// next), one leading to a version that no type or raw upcaster continues, one for an event
/// with no type at all. Each message says which and what to do.
fn misplaced_upcasters(
    events: &[&'static EventDescriptor],
    raw: &[crate::upcast::RawUpcaster],
) -> Vec<String> {
    let mut problems = Vec::new();
    for pair in raw.windows(2) {
        if pair[0].name() == pair[1].name() && pair[0].from_version() == pair[1].from_version() {
            problems.push(format!(
                "event `{}` has two raw upcasters from version {}: keep one",
                pair[0].name(),
                pair[0].from_version()
            ));
        }
    }
    for upcaster in raw {
        let (name, from) = (upcaster.name(), upcaster.from_version());
        let typed = |version: u32| {
            events
                .iter()
                .find(|d| d.name() == name && d.version() == version)
        };
        let newest = events
            .iter()
            .filter(|d| d.name() == name)
            .map(|d| d.version())
            .max();
        match newest {
            None => problems.push(format!(
                "raw upcaster of `{name}` from version {from}: no version of `{name}` is \
                 linked into the binary, so nothing reads what it writes"
            )),
            Some(newest) if newest <= from => problems.push(format!(
                "raw upcaster of `{name}` from version {from} writes version {}, which no \
                 type defines (the newest is {newest})",
                from + 1
            )),
            Some(_) => {
                if let Some(next) = typed(from + 1)
                    && next.previous().is_some()
                {
                    problems.push(format!(
                        "event `{name}` goes from version {from} to {} twice: by a raw \
                         upcaster and by `previous` on `{}`; remove one",
                        from + 1,
                        next.rust_type()
                    ));
                } else if typed(from + 1).is_none()
                    && !raw
                        .iter()
                        .any(|u| u.name() == name && u.from_version() == from + 1)
                {
                    problems.push(format!(
                        "raw upcaster of `{name}` from version {from} writes version {}, \
                         which neither a type nor another raw upcaster reads",
                        from + 1
                    ));
                }
            }
        }
    }
    problems
}

struct DisplayBroken<'a>(&'a [BrokenChain]);

impl fmt::Display for DisplayBroken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, broken) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{broken}")?;
        }
        Ok(())
    }
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
