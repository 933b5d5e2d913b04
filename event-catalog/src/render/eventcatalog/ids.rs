//! EventCatalog ids and version strings, from the catalog's names and integer versions.
//!
//! An id names a folder and a URL segment (`/docs/events/<id>/<version>`), and references
//! between resources (`sends`, `receives`, `services`) use it:
//!
//! - a name made of lowercase ASCII letters, digits, `.`, `_` and `-`, starting with a letter
//!   or digit, not ending with `.`, and at most 64 bytes long, is its own id: every event name
//!   the derive accepts (`order.created`), and service names like `orders-service`;
//! - any other name is lowercased, each run of other characters becomes one `-`, `-`, `.`
//!   and `_` are trimmed from both ends, it is cut to 64 bytes, and `-` and the 32-bit FNV-1a
//!   hash of the whole name (8 hex digits) are appended: `Billing Service` →
//!   `billing-service-<hash>`. The hash keeps two names that slug alike (`A B`, `a-b`)
//!   apart, and the same name always gets the same id.
//!
//! Versions are `N.0.0`: the linter (`schema/valid-semver`) rejects a bare `1`, and
//! EventCatalog orders versions as semver, so `10.0.0` comes after `9.0.0`.

/// The longest id kept as written.
const MAX_ID: usize = 64;

/// The EventCatalog id of a name; see the module docs.
pub(super) fn id(name: &str) -> String {
    if is_id(name) {
        return name.to_owned();
    }
    let mut slug = String::with_capacity(name.len());
    for c in name.chars().map(|c| c.to_ascii_lowercase()) {
        if is_id_char(c) {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let trimmed = slug.trim_matches(['-', '.', '_']);
    // Every character left is ASCII, so any byte index is a character boundary.
    let cut = trimmed[..trimmed.len().min(MAX_ID)].trim_end_matches(['-', '.', '_']);
    let stem = if cut.is_empty() { "id" } else { cut };
    format!("{stem}-{:08x}", fnv1a(name))
}

/// The EventCatalog version of an integer version: `N.0.0`.
pub(super) fn version(version: u32) -> String {
    format!("{version}.0.0")
}

/// Whether `name` is its own id.
fn is_id(name: &str) -> bool {
    name.len() <= MAX_ID
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(is_id_char)
        && !name.ends_with('.')
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
}

/// 32-bit FNV-1a of the name's UTF-8 bytes: small, and the same on every platform and
/// release (unlike `std`'s hasher).
fn fnv1a(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_are_their_own_ids() {
        for name in [
            "order.created",
            "invoice.partially_paid",
            "orders-service",
            "v2",
        ] {
            assert_eq!(id(name), name);
        }
    }

    #[test]
    fn other_names_are_slugged_with_a_hash() {
        let billing = id("Billing Service");
        assert!(billing.starts_with("billing-service-"), "{billing}");
        assert_eq!(billing.len(), "billing-service-".len() + 8);
        assert_eq!(id("Billing Service"), billing, "deterministic");
        assert_ne!(
            id("billing  service!"),
            billing,
            "names that slug alike stay apart"
        );
        assert!(id("../etc").starts_with("etc-"));
        assert!(id("").starts_with("id-"));
        assert!(id("日本").starts_with("id-"));
        assert!(id("trailing.").starts_with("trailing-"));
        assert!(id(&"x".repeat(100)).len() <= MAX_ID + 9);
        for name in ["", ".", "..", "a/b", "a\\b", " x ", "ÄÖ", "-a-", "_"] {
            let id = id(name);
            let first = id.chars().next();
            assert!(
                first.is_some_and(|c| c.is_ascii_alphanumeric()) && id.chars().all(is_id_char),
                "{name:?} -> {id}"
            );
        }
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
        assert_eq!(fnv1a("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn versions_are_semver() {
        assert_eq!(version(1), "1.0.0");
        assert_eq!(version(10), "10.0.0");
    }
}
