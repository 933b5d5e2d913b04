//! Dotted glob patterns for `subscribe_pattern`: `order.*`, `*.created`, `*`.

/// Whether `event_type` matches the dotted glob `pattern` as
/// [`EventBus::subscribe_pattern`](crate::EventBus::subscribe_pattern) reads it: segments
/// separated by `.`, `*` matching one segment, a trailing `*` (or `*` alone) matching any
/// number of remaining segments (at least one).
///
/// ```
/// use event_core::matches_pattern;
///
/// assert!(matches_pattern("order.*", "order.payment.failed"));
/// assert!(matches_pattern("*.created", "order.created"));
/// assert!(!matches_pattern("order.*", "orders.created"));
/// ```
pub fn matches_pattern(pattern: &str, event_type: &str) -> bool {
    Pattern::new(pattern).matches(event_type)
}

/// A pattern over event types: segments separated by `.`, `*` matching one segment, a
/// trailing `*` (or `*` alone) matching any number of remaining segments (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    segments: Vec<String>,
}

impl Pattern {
    pub(crate) fn new(pattern: &str) -> Self {
        Pattern {
            segments: pattern.split('.').map(str::to_owned).collect(),
        }
    }

    /// The one event type the pattern matches, when it has no `*`.
    pub(crate) fn literal(&self) -> Option<String> {
        (!self.segments.iter().any(|s| s == "*")).then(|| self.segments.join("."))
    }

    /// The pattern as it was written.
    pub(crate) fn text(&self) -> String {
        self.segments.join(".")
    }

    pub(crate) fn matches(&self, event_type: &str) -> bool {
        let mut parts = event_type.split('.');
        let last = self.segments.len() - 1;
        for (i, segment) in self.segments.iter().enumerate() {
            let Some(part) = parts.next() else {
                return false;
            };
            if segment == "*" {
                if i == last {
                    return true;
                }
            } else if segment != part {
                return false;
            }
        }
        parts.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn globs() {
        let cases = [
            ("*", "order.created", true),
            ("order.*", "order.created", true),
            ("order.*", "order.payment.failed", true),
            ("order.*", "orders.created", false),
            ("order.*", "order", false),
            ("*.created", "order.created", true),
            ("*.created", "order.paid", false),
            ("ai.*.open", "ai.breaker.open", true),
            ("ai.*.open", "ai.breaker.closed", false),
            ("order.created", "order.created", true),
            ("order.created", "order.created.v2", false),
        ];
        for (pattern, event, expected) in cases {
            assert_eq!(
                Pattern::new(pattern).matches(event),
                expected,
                "{pattern} {event}"
            );
        }
    }
}
