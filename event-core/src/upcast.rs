//! Upcasters over raw JSON, for versions of an event whose Rust type is gone.
//!
//! A version that still has its struct is upcast through the typed chain (`previous` and a
//! `From` impl). When the struct of an old version is deleted, events stored at that
//! version still have to be read: a raw upcaster turns the payload of version N into the
//! payload of version N + 1, as JSON. A chain may start raw and continue typed: raw
//! upcasters from 1 to 2, then `previous` links from 2 on. The registry checks that every
//! step of every chain is covered once ([`registry()`](crate::registry())).

use serde_json::Value;
use std::sync::Mutex;

/// Turns the payload of one version into the payload of the next, as JSON. `Err` holds why
/// the payload could not be upcast; it is reported as a payload error of the event.
pub type UpcastFn = fn(Value) -> Result<Value, String>;

/// A raw upcaster: the payload of `name` at `from_version` into the payload at
/// `from_version + 1`. Registered with [`raw_upcaster!`](crate::raw_upcaster) or
/// [`register_raw_upcaster`].
#[derive(Debug, Clone, Copy)]
pub struct RawUpcaster {
    name: &'static str,
    from_version: u32,
    upcast: UpcastFn,
}

impl RawUpcaster {
    /// An upcaster of `name` from `from_version` to the next version.
    pub const fn new(name: &'static str, from_version: u32, upcast: UpcastFn) -> Self {
        RawUpcaster {
            name,
            from_version,
            upcast,
        }
    }

    /// The event type.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The version it reads; it writes `from_version + 1`.
    pub fn from_version(&self) -> u32 {
        self.from_version
    }

    /// Upcasts one payload.
    ///
    /// # Errors
    ///
    /// The upcaster's own error, when the payload is not what it expects.
    pub fn apply(&self, payload: Value) -> Result<Value, String> {
        (self.upcast)(payload)
    }
}

inventory::collect!(RawUpcaster);

static MANUAL: Mutex<Vec<RawUpcaster>> = Mutex::new(Vec::new());

/// Registers a raw upcaster at run time, where link-time registration is not available (see
/// [`register`](crate::register())). [`raw_upcaster!`](crate::raw_upcaster) is the usual way.
pub fn register_raw_upcaster(name: &'static str, from_version: u32, upcast: UpcastFn) {
    MANUAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(RawUpcaster::new(name, from_version, upcast));
}

/// Every raw upcaster linked into the binary or registered by hand, sorted by name and
/// version (a pair registered twice appears twice; the registry reports it).
pub fn raw_upcasters() -> Vec<RawUpcaster> {
    let mut all: Vec<RawUpcaster> = inventory::iter::<RawUpcaster>
        .into_iter()
        .copied()
        .chain(
            MANUAL
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .copied(),
        )
        .collect();
    all.sort_by_key(|u| (u.name, u.from_version));
    // The same registration seen twice (linked and by hand) is one.
    all.dedup_by(|a, b| {
        a.name == b.name
            && a.from_version == b.from_version
            && std::ptr::fn_addr_eq(a.upcast, b.upcast)
    });
    all
}

/// The upcaster of `name` from `version`, if exactly one is registered.
fn find(name: &str, version: u32) -> Option<RawUpcaster> {
    let found = |u: &RawUpcaster| u.name == name && u.from_version == version;
    let mut linked = inventory::iter::<RawUpcaster>
        .into_iter()
        .filter(|u| found(u));
    if let Some(first) = linked.next() {
        return Some(*first);
    }
    MANUAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|u| found(u))
        .copied()
}

/// The payload of `name` written at `version`, upcast to `target` through raw upcasters.
/// `None` when some step from `version` to `target` has none.
pub(crate) fn upcast_raw(
    name: &str,
    version: u32,
    target: u32,
    payload: &str,
) -> Option<Result<Value, serde_json::Error>> {
    if version >= target {
        return None;
    }
    let steps: Vec<RawUpcaster> = (version..target)
        .map(|v| find(name, v))
        .collect::<Option<_>>()?;
    let mut value: Value = match serde_json::from_str(payload) {
        Ok(value) => value,
        Err(error) => return Some(Err(error)),
    };
    for step in steps {
        value = match step.apply(value) {
            Ok(value) => value,
            Err(message) => {
                return Some(Err(serde::de::Error::custom(format_args!(
                    // No backticks around the name: the message is redacted as serde's are,
                    // and a quoted word there would read as a value.
                    "raw upcaster of {name} from version {}: {message}",
                    step.from_version
                ))));
            }
        };
    }
    Some(Ok(value))
}

/// Registers a raw upcaster: a function turning the JSON payload of an event at one version
/// into its payload at the next, for a version whose Rust type is gone.
///
/// ```standalone_crate
/// use event_core::{DomainEvent, RawEnvelope};
/// use schemars::JsonSchema;
/// use serde::{Deserialize, Serialize};
/// use serde_json::{Value, json};
///
/// /// Version 1 had `amount` in whole euros; its struct was deleted long ago.
/// fn issued_v1_to_v2(mut payload: Value) -> Result<Value, String> {
///     let euros = payload["amount"].as_u64().ok_or("`amount` is not a whole number")?;
///     payload["amount_cents"] = json!(euros * 100);
///     payload.as_object_mut().ok_or("not an object")?.remove("amount");
///     Ok(payload)
/// }
/// event_core::raw_upcaster!("invoice.issued", 1, issued_v1_to_v2);
///
/// #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
/// #[event(name = "invoice.issued", version = 2)]
/// struct InvoiceIssued { invoice_id: String, amount_cents: u64 }
///
/// let stored = r#"{"id":"0193a1b2-0000-7000-8000-000000000001","type":"invoice.issued",
///   "version":1,"occurred_at":"2026-11-23T10:00:00.123Z","source":null,"correlation_id":null,
///   "causation_id":null,"trace_id":null,"payload":{"invoice_id":"i-1","amount":12},"meta":{}}"#;
/// let envelope = RawEnvelope::from_json(stored.as_bytes())?.decode::<InvoiceIssued>()?;
/// assert_eq!(envelope.version, 2);
/// assert_eq!(envelope.payload.amount_cents, 1200);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[macro_export]
macro_rules! raw_upcaster {
    ($name:expr, $from_version:expr, $upcast:expr $(,)?) => {
        $crate::__private::inventory::submit! {
            $crate::RawUpcaster::new($name, $from_version, $upcast)
        }
    };
}
