//! What a store says of its leases, and what a fenced write is conditional on.

/// A lease that runs, as [`Store::leases`](super::Store::leases) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseInfo {
    /// Its name.
    pub name: String,
    /// Who holds it.
    pub holder: String,
    /// Its fencing token: larger with each new holder.
    pub token: u64,
}

impl LeaseInfo {
    /// A lease as listed; stores build them.
    pub fn new(name: impl Into<String>, holder: impl Into<String>, token: u64) -> Self {
        LeaseInfo {
            name: name.into(),
            holder: holder.into(),
            token,
        }
    }
}

/// The condition of a fenced write: `holder` holds the lease `lease` with `token`, and the
/// lease has not run out. A holder that lost the lease (it ran out while the holder was
/// paused, and another took it with a larger token) has its writes refused.
///
/// ```
/// use event_core::store::Fence;
///
/// let fence = Fence::new("group/billing/shard/3", "worker-1", 7);
/// assert_eq!(fence.token, 7);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fence {
    /// The lease's name.
    pub lease: String,
    /// Its holder.
    pub holder: String,
    /// The token under which the holder took it.
    pub token: u64,
}

impl Fence {
    /// The condition that `holder` holds `lease` with `token`.
    pub fn new(lease: impl Into<String>, holder: impl Into<String>, token: u64) -> Self {
        Fence {
            lease: lease.into(),
            holder: holder.into(),
            token,
        }
    }
}
