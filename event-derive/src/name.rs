//! Pure rules about event names: deriving the default from a type name, and validating a
//! name given by hand. Kept free of syn so they are unit tested directly.

/// Splits a Rust type name into lowercase words.
///
/// `OrderCheckoutSent` → `order`, `checkout`, `sent`; acronyms stay one word
/// (`AICallFailed` → `ai`, `call`, `failed`); digits stay with the word before them
/// (`ShipmentV2Ready` → `shipment`, `v2`, `ready`); underscores separate words.
pub(crate) fn split_words(type_name: &str) -> Vec<String> {
    let name = type_name.strip_prefix("r#").unwrap_or(type_name);
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        if c.is_uppercase() && !current.is_empty() {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            // A new word starts at `aB`, `1B`, and at the last capital of an acronym (`AICall`).
            if prev.is_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_uppercase() && next_is_lower)
            {
                words.push(std::mem::take(&mut current));
            }
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Why no default name could be derived.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DefaultNameError {
    /// The type name is a single word and no aggregate gives the context.
    OneWord { word: String },
    /// The type name holds nothing beyond the aggregate (`Order` with `aggregate = "order"`).
    NothingAfterAggregate,
}

/// The default event name of a type: `OrderCheckoutSent` → `order.checkout_sent`.
///
/// The first word is the context, the rest joined by `_` is the fact. With an aggregate, the
/// aggregate is the context, and the type name may repeat it or not: with `aggregate =
/// "order"`, both `OrderPaid` and `Paid` give `order.paid`. A last word that spells the
/// version is dropped, so the renamed old struct of an evolved event, `OrderCreatedV1` at
/// version 1, keeps the name `order.created`.
pub(crate) fn default_name(
    type_name: &str,
    aggregate: Option<&str>,
    version: u32,
) -> Result<String, DefaultNameError> {
    let mut words = split_words(type_name);
    if words.len() > 1 && words.last().is_some_and(|w| *w == format!("v{version}")) {
        words.pop();
    }
    if let Some(aggregate) = aggregate {
        let prefix: Vec<&str> = aggregate.split('_').collect();
        let rest = if words.len() >= prefix.len() && words.iter().zip(&prefix).all(|(w, p)| w == p)
        {
            &words[prefix.len()..]
        } else {
            &words[..]
        };
        if rest.is_empty() {
            return Err(DefaultNameError::NothingAfterAggregate);
        }
        return Ok(format!("{aggregate}.{}", rest.join("_")));
    }
    match words.split_first() {
        Some((context, rest)) if !rest.is_empty() => Ok(format!("{context}.{}", rest.join("_"))),
        _ => Err(DefaultNameError::OneWord {
            word: words.concat(),
        }),
    }
}

/// Whether `s` is one name segment: `[a-z][a-z0-9_]*`.
pub(crate) fn is_segment(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// If the last segment is a version suffix `vN`, its number as written.
fn version_suffix(segment: &str) -> Option<&str> {
    let digits = segment.strip_prefix('v')?;
    (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

/// Checks an event name against the naming rules and the declared version.
///
/// Returns the message to show on the name literal.
pub(crate) fn check_name(name: &str, version: u32) -> Result<(), String> {
    const SHAPE: &str = "lowercase dot-separated segments like `order.created`";
    if name.is_empty() {
        return Err(format!("event name is empty: write {SHAPE}"));
    }
    if name != name.to_lowercase() {
        let lower = name.to_lowercase();
        return Err(format!(
            "event name `{name}` must be lowercase: write `{lower}`"
        ));
    }
    let segments: Vec<&str> = name.split('.').collect();
    if let Some(bad) = segments.iter().find(|s| s.is_empty()) {
        debug_assert!(bad.is_empty());
        return Err(format!(
            "event name `{name}` has an empty segment: write {SHAPE}"
        ));
    }
    if let Some(bad) = segments.iter().find(|s| !is_segment(s)) {
        let hint = if bad.contains('-') || bad.contains(' ') {
            ": join words with `_`"
        } else if bad.starts_with(|c: char| c.is_ascii_digit() || c == '_') {
            ": a segment starts with a letter"
        } else {
            ""
        };
        return Err(format!(
            "event name segment `{bad}` in `{name}` must match `[a-z][a-z0-9_]*`{hint}"
        ));
    }
    let (last, before) = segments
        .split_last()
        .expect("split yields at least one segment");
    let facts = if let Some(digits) = version_suffix(last).filter(|_| !before.is_empty()) {
        if *digits != *version.to_string() {
            return Err(format!(
                "event name `{name}` ends in `.{last}` but the version is {version}: \
                 write `version = {digits}`, or end the name in `.v{version}`"
            ));
        }
        before.len()
    } else {
        segments.len()
    };
    if facts < 2 {
        return Err(format!(
            "event name `{name}` needs at least two segments, the context first: \
             `<context>.{}`",
            segments.join(".")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_camel_case() {
        assert_eq!(
            split_words("OrderCheckoutSent"),
            ["order", "checkout", "sent"]
        );
        assert_eq!(split_words("AICallFailed"), ["ai", "call", "failed"]);
        assert_eq!(split_words("ShipmentV2Ready"), ["shipment", "v2", "ready"]);
        assert_eq!(split_words("Order_Paid"), ["order", "paid"]);
        assert_eq!(split_words("r#Match"), ["match"]);
        assert_eq!(split_words("Created"), ["created"]);
    }

    #[test]
    fn default_names() {
        assert_eq!(
            default_name("OrderCreated", None, 1).unwrap(),
            "order.created"
        );
        assert_eq!(
            default_name("OrderCheckoutSent", None, 1).unwrap(),
            "order.checkout_sent"
        );
        assert_eq!(
            default_name("OrderPaid", Some("order"), 1).unwrap(),
            "order.paid"
        );
        assert_eq!(
            default_name("Paid", Some("order"), 1).unwrap(),
            "order.paid"
        );
        assert_eq!(
            default_name("PaymentFailed", Some("order"), 1).unwrap(),
            "order.payment_failed"
        );
        assert_eq!(
            default_name("PriceAgreementSynced", Some("price_agreement"), 1).unwrap(),
            "price_agreement.synced"
        );
        assert_eq!(
            default_name("Created", None, 1),
            Err(DefaultNameError::OneWord {
                word: "created".into()
            })
        );
        assert_eq!(
            default_name("Order", Some("order"), 1),
            Err(DefaultNameError::NothingAfterAggregate)
        );
    }

    #[test]
    fn drops_a_last_word_that_spells_the_version() {
        assert_eq!(
            default_name("OrderCreatedV1", None, 1).unwrap(),
            "order.created"
        );
        assert_eq!(
            default_name("IssuedV2", Some("invoice"), 2).unwrap(),
            "invoice.issued"
        );
        // Another number is part of the fact.
        assert_eq!(
            default_name("OrderCreatedV1", None, 2).unwrap(),
            "order.created_v1"
        );
        assert_eq!(
            default_name("ShipmentV2", None, 2),
            Err(DefaultNameError::OneWord {
                word: "shipment".into()
            })
        );
    }

    #[test]
    fn accepts_good_names() {
        let cases = [
            ("order.created", 1),
            ("ai.breaker.half_open", 1),
            ("s3.object_v2_put", 1),
            ("order.created.v2", 2),
        ];
        for (name, version) in cases {
            assert_eq!(check_name(name, version), Ok(()), "{name}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        let cases = [
            ("", "is empty"),
            ("Order.Created", "must be lowercase: write `order.created`"),
            ("created", "needs at least two segments"),
            ("order.v1", "needs at least two segments"),
            ("order..created", "empty segment"),
            ("order.checkout-sent", "join words with `_`"),
            ("order.2fa_enabled", "starts with a letter"),
            ("order.created.v2", "ends in `.v2` but the version is 1"),
        ];
        for (name, expected) in cases {
            let message = check_name(name, 1).unwrap_err();
            assert!(message.contains(expected), "{name}: {message}");
        }
    }
}
