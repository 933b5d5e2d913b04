//! The event catalog: documentation and schemas generated from the `event-core` registry.
//!
//! Not written yet: this crate only reserves its place in the workspace. The renderers, the
//! compatibility checker and the CLI come with the catalog issue.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
