//! Version history and the Markdown changelog, on real schemars output: `account.opened` has
//! three versions, each read as the next through `previous`, `account.noted` two
//! compatible ones.

use event_catalog::{Catalog, Deprecation, FieldChange, Mode, Profile, Rule, UpcastBy};
use event_core::{DomainEvent, Registry};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, JsonSchema)]
struct Address {
    city: String,
    zip: Option<String>,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema)]
struct AddressV2 {
    city: String,
    zip: String,
}

/// An account was opened (v1).
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "account.opened", source = "accounts")]
struct OpenedV1 {
    account_id: String,
    balance: f64,
    nickname: String,
    address: Address,
}

/// An account was opened (v2).
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "account.opened", version = 2, source = "accounts", previous = OpenedV1)]
struct OpenedV2 {
    account_id: String,
    balance: i64,
    nickname: Option<String>,
    address: AddressV2,
    currency: String,
}

impl From<OpenedV1> for OpenedV2 {
    fn from(v1: OpenedV1) -> Self {
        OpenedV2 {
            account_id: v1.account_id,
            #[allow(clippy::cast_possible_truncation, reason = "test data")]
            balance: v1.balance as i64,
            nickname: Some(v1.nickname),
            address: AddressV2 {
                city: v1.address.city,
                zip: v1.address.zip.unwrap_or_default(),
            },
            currency: "EUR".into(),
        }
    }
}

/// An account was opened.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "account.opened", version = 3, source = "accounts", previous = OpenedV2)]
struct OpenedV3 {
    account_id: String,
    balance: i64,
    currency: String,
}

impl From<OpenedV2> for OpenedV3 {
    fn from(v2: OpenedV2) -> Self {
        OpenedV3 {
            account_id: v2.account_id,
            balance: v2.balance,
            currency: v2.currency,
        }
    }
}

/// A note was added to an account (v1).
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "account.noted", source = "accounts")]
struct NotedV1 {
    account_id: String,
}

/// A note was added to an account.
#[derive(Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "account.noted", version = 2, source = "accounts", previous = NotedV1)]
struct NotedV2 {
    account_id: String,
    note: Option<String>,
}

impl From<NotedV1> for NotedV2 {
    fn from(v1: NotedV1) -> Self {
        NotedV2 {
            account_id: v1.account_id,
            note: None,
        }
    }
}

fn catalog() -> Catalog {
    Catalog::from_registry(
        &Registry::from_descriptors([
            OpenedV1::descriptor(),
            OpenedV2::descriptor(),
            OpenedV3::descriptor(),
            NotedV1::descriptor(),
            NotedV2::descriptor(),
        ])
        .unwrap(),
    )
}

fn change(kind: &str, path: &str, a: &str, b: &str) -> FieldChange {
    let path = path.to_owned();
    match kind {
        "added" => FieldChange::Added {
            path,
            ty: a.into(),
            required: b == "required",
        },
        "removed" => FieldChange::Removed { path, ty: a.into() },
        "type" => FieldChange::TypeChanged {
            path,
            from: a.into(),
            to: b.into(),
        },
        _ => FieldChange::RequiredChanged {
            path,
            required: a == "required",
        },
    }
}

#[test]
fn each_step_lists_its_field_changes_and_how_the_older_version_is_read() {
    let catalog = catalog();
    assert_eq!(catalog.versions("account.opened"), [1, 2, 3]);
    let history = catalog.history("account.opened");
    assert_eq!(history.len(), 2);

    let first = &history[0];
    assert_eq!((first.from, first.to), (1, 2));
    assert_eq!(first.upcast, Some(UpcastBy::Previous));
    assert!(first.compared);
    assert_eq!(
        first.changes,
        [
            change("type", "address", "object (Address)", "object (AddressV2)"),
            change("type", "address.zip", "string, nullable", "string"),
            change("required", "address.zip", "required", ""),
            change("type", "balance", "number (double)", "integer (int64)"),
            change("added", "currency", "string", "required"),
            change("type", "nickname", "string", "string, nullable"),
            change("required", "nickname", "optional", ""),
        ]
    );

    let second = &history[1];
    assert_eq!(
        (second.from, second.to, second.upcast),
        (2, 3, Some(UpcastBy::Previous))
    );
    assert_eq!(
        second.changes,
        [
            change("removed", "address", "object (AddressV2)", ""),
            change("removed", "address.city", "string", ""),
            change("removed", "address.zip", "string", ""),
            change("removed", "nickname", "string, nullable", ""),
        ]
    );
}

#[test]
fn each_step_carries_the_checkers_verdict_both_ways() {
    let catalog = catalog();
    let opened = catalog.history("account.opened");
    assert!(!opened[0].is_compatible());
    let rules: Vec<(Rule, &str)> = opened[0]
        .findings
        .iter()
        .map(|f| (f.rule, f.path.as_str()))
        .collect();
    // v2 readers cannot read a v1 event without its currency; a number is not an integer.
    assert!(
        rules.contains(&(Rule::RequiredPropertyAdded, "currency")),
        "{rules:?}"
    );
    assert!(
        rules.iter().any(|(rule, path)| *path == "balance"
            && matches!(rule, Rule::TypeChanged | Rule::TypeNarrowed)),
        "{rules:?}"
    );
    // Adding an optional field is compatible both ways as serde reads.
    let noted = catalog.history("account.noted");
    assert_eq!(noted.len(), 1);
    assert!(noted[0].is_compatible(), "{:?}", noted[0].findings);
    assert_eq!(
        noted[0].changes,
        [change("added", "note", "string, nullable", "optional")]
    );
    // One version: no step.
    assert!(Catalog::default().history("account.opened").is_empty());
}

#[test]
fn every_version_page_shows_the_whole_history() {
    let rendered = catalog().render();
    for version in 1..=3 {
        let page = rendered
            .get(&format!("events/account.opened.v{version}.md"))
            .unwrap();
        let history = &page[page.find("## Version history").expect(page)..];
        let v2_to_v3 = history.find("### v2 → v3").expect(history);
        let v1_to_v2 = history.find("### v1 → v2").expect(history);
        assert!(v2_to_v3 < v1_to_v2, "newest first:\n{history}");
        assert!(history.contains("A v1 event is read as v2 through `previous` and `From`."));
        assert!(history.contains("A v2 event is read as v3 through `previous` and `From`."));
        assert!(history.contains("| `currency` | added: string, required |"));
        assert!(history.contains("| `nickname` | now optional (was required) |"));
        assert!(
            history.contains("| `required-property-added` | `currency` | v2 readers, v1 events |")
        );
        assert!(history.contains("Compatibility: **breaking**."));
    }
    let noted = rendered.get("events/account.noted.v2.md").unwrap();
    assert!(noted.contains("Compatibility: **compatible** both ways"));
    let single =
        Catalog::from_registry(&Registry::from_descriptors([NotedV1::descriptor()]).unwrap())
            .render();
    assert!(
        single
            .get("events/account.noted.v1.md")
            .unwrap()
            .contains("## Version history\n\nOne version.\n")
    );
}

/// The changelog between two catalogs: one release adds v3 of `account.opened` and the new
/// `account.noted`, deprecates v1, removes nothing; the next removes v1 (deprecated) and v2
/// (not deprecated), and breaks v3 in place.
#[test]
fn the_changelog_names_new_events_versions_deprecations_removals_and_breaking_changes() {
    let all = catalog();
    let pick = |keep: &[(&str, u32)]| {
        Catalog::from_events(
            all.events()
                .iter()
                .filter(|e| keep.contains(&(e.name.as_str(), e.version)))
                .cloned(),
        )
    };
    let old = pick(&[("account.opened", 1), ("account.opened", 2)]);
    let mut new_events: Vec<_> = all.events().to_vec();
    for event in &mut new_events {
        if (event.name.as_str(), event.version) == ("account.opened", 1) {
            event.deprecated = Deprecation::Deprecated(Some("read v3".into()));
        }
        if (event.name.as_str(), event.version) == ("account.opened", 2) {
            event.consumers = vec!["ledger".into()];
        }
    }
    let new = Catalog::from_events(new_events);
    let report = Catalog::compare(&old, &new, Mode::Backward, Profile::Serde);
    let markdown = report.to_markdown(&old, &new);
    assert!(
        markdown.starts_with(
            "# Event changes\n\n1 new event(s), 1 new version(s), 1 deprecated, 0 removed, 0 breaking change(s).\n"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "## New events\n\n- `account.noted` v1: A note was added to an account (v1).\n- `account.noted` v2: A note was added to an account.\n"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains("## New versions\n\n- `account.opened` v3 (v2 read through `previous` and `From`)\n  - `address` removed (was object (AddressV2))\n"),
        "{markdown}"
    );
    assert!(
        markdown.contains("## Deprecated\n\n- `account.opened` v1: read v3\n"),
        "{markdown}"
    );
    assert!(
        markdown.contains("## Other changes\n\n- `account.opened` v2: consumers added: `ledger`\n"),
        "{markdown}"
    );
    assert!(!markdown.contains("## Breaking changes"), "{markdown}");

    // The next release: v1 (deprecated) and v2 (not) removed, v3 loses `currency` in place.
    let mut later: Vec<_> = new
        .events()
        .iter()
        .filter(|e| e.name != "account.opened" || e.version == 3)
        .cloned()
        .collect();
    for event in &mut later {
        if event.name == "account.opened" {
            event.schema["required"] =
                serde_json::json!(["account_id", "balance", "currency", "opened_by"]);
            event.schema["properties"]["opened_by"] = serde_json::json!({"type": "string"});
        }
    }
    let later = Catalog::from_events(later);
    let report = Catalog::compare(&new, &later, Mode::Backward, Profile::Serde);
    let markdown = report.to_markdown(&new, &later);
    assert!(
        markdown.contains(
            "## Removed\n\n- `account.opened` v1 (it was deprecated)\n- `account.opened` v2 (breaking: it was not deprecated first)\n"
        ),
        "{markdown}"
    );
    let breaking = &markdown[markdown.find("## Breaking changes").expect(&markdown)..];
    assert!(
        breaking.contains("- `account.opened` v2: ")
            && breaking.contains("(rule `version-removed`;"),
        "{markdown}"
    );
    assert!(
        breaking.contains("- `account.opened` v3, `opened_by`: ")
            && breaking.contains(
                "(rule `required-property-added`; new readers cannot read old events). Fix: "
            ),
        "{markdown}"
    );
    assert!(
        markdown.contains("- `account.opened` v3: schema changed (breaking, see above)"),
        "{markdown}"
    );

    let same = Catalog::compare(&new, &new, Mode::Backward, Profile::Serde);
    assert_eq!(
        same.to_markdown(&new, &new),
        "# Event changes\n\nNo changes.\n"
    );
}

/// A catalog read back from a `catalog.json` whose chain has a gap (the registry refuses one;
/// an edited or foreign file may hold one) says so rather than inventing a step.
#[test]
fn a_step_without_an_upcast_says_who_still_receives_the_older_version() {
    let mut events = catalog().events().to_vec();
    for event in &mut events {
        if event.name == "account.noted" {
            event.upcasts.clear();
        }
    }
    let catalog = Catalog::from_json(&Catalog::from_events(events).to_json()).unwrap();
    let history = catalog.history("account.noted");
    assert_eq!(
        (history[0].from, history[0].to, history[0].upcast),
        (1, 2, None)
    );
    let page = catalog.render();
    let page = page.get("events/account.noted.v1.md").unwrap();
    assert!(
        page.contains("A v1 event is not read as v2: only subscriptions naming v1 receive it."),
        "{page}"
    );
}
