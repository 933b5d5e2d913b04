//! The `catalog` binary: `generate`, `check` and `diff`, their output and exit codes.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_catalog");

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("orders-catalog-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN).args(args).output().unwrap();
    Run {
        code: status.code().expect("exited"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A generated catalog in a temp dir.
fn generated(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    let out = dir.path().join("catalog");
    let run = run(&["generate", "--out", s(&out)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    dir
}

fn catalog_dir(dir: &TempDir) -> PathBuf {
    dir.path().join("catalog")
}

/// Every file under `dir` with its contents, sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push((entry.path(), std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Edits the schema of one event in a catalog.json.
fn edit_schema(catalog_json: &Path, name: &str, version: u64, edit: impl FnOnce(&mut Value)) {
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(catalog_json).unwrap()).unwrap();
    let event = doc["events"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["name"] == name && e["version"] == version)
        .unwrap();
    edit(&mut event["schema"]);
    std::fs::write(
        catalog_json,
        serde_json::to_string_pretty(&doc).unwrap() + "\n",
    )
    .unwrap();
}

/// Simulates an old `order.paid` v1 without `paid_at`: the current one added it as required.
fn without_paid_at(schema: &mut Value) {
    schema["properties"]
        .as_object_mut()
        .unwrap()
        .remove("paid_at");
    schema["required"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r != "paid_at");
}

#[test]
fn generate_then_check_is_current_and_a_rerun_writes_nothing() {
    let dir = generated("current");
    let out = catalog_dir(&dir);
    assert!(out.join("events/order.created.v1.md").is_file());
    assert!(out.join("schemas/invoice.issued.v2.json").is_file());
    let before = snapshot(&out);

    let again = run(&["generate", "--out", s(&out)]);
    assert_eq!(again.code, 0);
    assert!(
        again
            .stdout
            .contains("17 events: 0 files written, 37 unchanged, 0 removed"),
        "{}",
        again.stdout
    );
    assert_eq!(snapshot(&out), before);

    let check = run(&["check", "--out", s(&out)]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check
            .stdout
            .contains("is current (17 events, 4 warning(s))"),
        "{}",
        check.stdout
    );
    // Warnings, which do not fail the check: the flow's last steps have no subscriber.
    let warnings = warning_lines(&check.stdout);
    assert_eq!(warnings.len(), 4, "{}", check.stdout);
    for event in [
        "invoice.partially_paid",
        "order.payment_processing",
        "shipment.in_transit",
        "shipment.ready",
    ] {
        assert!(
            warnings.contains(&format!("warning: nobody consumes `{event}`: no `#[union(consumer = \"...\")]` linked into this binary accepts any of its versions").as_str()),
            "{}",
            check.stdout
        );
    }
}

#[test]
fn diff_as_markdown_writes_a_changelog() {
    let dir = generated("changelog");
    let new = catalog_dir(&dir).join("catalog.json");
    let same = run(&["diff", s(&new), s(&new), "--format", "markdown"]);
    assert_eq!(
        (same.code, same.stdout.as_str()),
        (0, "# Event changes\n\nNo changes.\n")
    );

    // The older release: no invoice.issued v2 yet, v1 not deprecated, order.paid without
    // paid_at.
    let old = dir.path().join("old.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&new).unwrap()).unwrap();
    let events = doc["events"].as_array_mut().unwrap();
    events.retain(|e| !(e["name"] == "invoice.issued" && e["version"] == 2));
    for event in events.iter_mut() {
        if event["name"] == "invoice.issued" {
            event["deprecated"] = Value::Bool(false);
        }
    }
    std::fs::write(&old, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    edit_schema(&old, "order.paid", 1, without_paid_at);

    let changelog = run(&["diff", s(&old), s(&new), "--format", "markdown"]);
    assert_eq!(
        changelog.code, 1,
        "breaking: {}{}",
        changelog.stdout, changelog.stderr
    );
    let text = changelog.stdout;
    assert!(
        text.starts_with("# Event changes\n\n0 new event(s), 1 new version(s), 1 deprecated, 0 removed, 1 breaking change(s).\n"),
        "{text}"
    );
    assert!(
        text.contains("## Breaking changes\n\n- `order.paid` v1, `paid_at`: "),
        "{text}"
    );
    assert!(
        text.contains(
            "(rule `required-property-added`; new readers cannot read old events). Fix: "
        ),
        "{text}"
    );
    assert!(
        text.contains("## New versions\n\n- `invoice.issued` v2 (v1 read through `previous` and `From`)\n  - `amount` removed (was number (double))\n"),
        "{text}"
    );
    assert!(
        text.contains("## Deprecated\n\n- `invoice.issued` v1: floating-point amounts lose cents"),
        "{text}"
    );
    assert!(
        text.contains(
            "## Other changes\n\n- `order.paid` v1: schema changed (breaking, see above)\n"
        ),
        "{text}"
    );
}

#[test]
fn check_lists_stale_missing_and_extra_files() {
    let dir = generated("stale");
    let out = catalog_dir(&dir);
    let readme = out.join("README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    std::fs::write(&readme, text.replace("17 events", "16 events")).unwrap();
    std::fs::remove_file(out.join("schemas/order.paid.v1.json")).unwrap();
    std::fs::write(out.join("events/order.refunded.v1.md"), "gone").unwrap();

    let check = run(&["check", "--out", s(&out)]);
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    assert!(check.stdout.contains("is stale"), "{}", check.stdout);
    assert!(
        check.stdout.contains("stale:   README.md (line 5)"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("expected: 17 events"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("found:    16 events"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("missing: schemas/order.paid.v1.json"),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("extra:   events/order.refunded.v1.md"),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("incompatible"), "{}", check.stdout);

    let generate = run(&["generate", "--out", s(&out)]);
    assert!(
        generate
            .stdout
            .contains("removed events/order.refunded.v1.md"),
        "{}",
        generate.stdout
    );
    assert_eq!(run(&["check", "--out", s(&out)]).code, 0);
}

#[test]
fn check_detects_a_breaking_change_without_a_version_bump() {
    let dir = generated("breaking");
    let out = catalog_dir(&dir);
    edit_schema(&out.join("catalog.json"), "order.paid", 1, without_paid_at);

    let check = run(&["check", "--out", s(&out)]);
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains("stale:   catalog.json"),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("order.paid v1 at /properties/paid_at: `paid_at` was added as required; old events do not have it [required-property-added; new readers cannot read old events]"),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("fix: make `paid_at` optional (`Option<T>` with `#[serde(default)]`)"),
        "{}",
        check.stdout
    );

    // Old readers ignore the new field: forward mode finds only the stale files.
    let forward = run(&["check", "--out", s(&out), "--mode", "forward"]);
    assert_eq!(forward.code, 1);
    assert!(
        !forward.stdout.contains("incompatible"),
        "{}",
        forward.stdout
    );
}

#[test]
fn the_strict_profile_flags_an_added_optional_field() {
    let dir = generated("strict");
    let out = catalog_dir(&dir);
    // The committed catalog predates `receipt_url`, an optional field.
    edit_schema(&out.join("catalog.json"), "order.paid", 1, |schema| {
        schema["properties"]
            .as_object_mut()
            .unwrap()
            .remove("receipt_url");
    });
    let serde = run(&["check", "--out", s(&out)]);
    assert!(!serde.stdout.contains("incompatible"), "{}", serde.stdout);
    let strict = run(&["check", "--out", s(&out), "--strict"]);
    assert_eq!(strict.code, 1);
    assert!(
        strict.stdout.contains(
            "order.paid v1 at /properties/receipt_url: `receipt_url` was added to an open object"
        ),
        "{}",
        strict.stdout
    );
}

#[test]
fn a_corrupt_catalog_json_names_file_line_and_column_and_writes_nothing() {
    let dir = generated("corrupt");
    let out = catalog_dir(&dir);
    let catalog_json = out.join("catalog.json");
    std::fs::write(&catalog_json, "{\n  \"format\": 1,\n  \"events\": [}\n").unwrap();
    let before = snapshot(dir.path());

    let check = run(&["check", "--out", s(&out)]);
    assert_eq!(check.code, 2, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stderr.contains(&format!(
            "error: `{}` is not a valid catalog.json (line 3, column 14)",
            catalog_json.display()
        )),
        "{}",
        check.stderr
    );
    assert!(check.stdout.is_empty(), "{}", check.stdout);

    let diff = run(&["diff", s(&catalog_json), s(&catalog_json)]);
    assert_eq!(diff.code, 2);
    assert!(
        diff.stderr.contains("(line 3, column 14)"),
        "{}",
        diff.stderr
    );
    assert_eq!(snapshot(dir.path()), before, "nothing written");
}

#[test]
fn a_missing_catalog_json_is_an_input_error() {
    let dir = TempDir::new("missing");
    let check = run(&["check", "--out", s(dir.path())]);
    assert_eq!(check.code, 2);
    assert!(
        check.stderr.contains(&format!(
            "error: cannot read `{}`",
            dir.path().join("catalog.json").display()
        )),
        "{}",
        check.stderr
    );
    assert!(snapshot(dir.path()).is_empty(), "nothing written");
}

#[test]
fn diff_reports_changes_and_fails_only_on_breaking_ones() {
    let dir = generated("diff");
    let new = catalog_dir(&dir).join("catalog.json");
    let same = run(&["diff", s(&new), s(&new)]);
    assert_eq!((same.code, same.stdout.as_str()), (0, "no changes\n"));

    let old = dir.path().join("old.json");
    std::fs::copy(&new, &old).unwrap();
    edit_schema(&old, "order.paid", 1, without_paid_at);
    let breaking = run(&["diff", s(&old), s(&new)]);
    assert_eq!(breaking.code, 1, "{}{}", breaking.stdout, breaking.stderr);
    assert!(
        breaking
            .stdout
            .contains("~ order.paid v1: changed (breaking)"),
        "{}",
        breaking.stdout
    );
    assert!(
        breaking.stdout.contains("required-property-added"),
        "{}",
        breaking.stdout
    );

    // Full mode also reports what old readers cannot read: here, nothing more.
    let full = run(&["diff", s(&old), s(&new), "--mode", "full"]);
    assert_eq!(full.code, 1);

    // The reverse: a field removed is read fine by new readers that no longer declare it.
    let compatible = run(&["diff", s(&new), s(&old)]);
    assert_eq!(compatible.code, 0, "{}", compatible.stdout);
    assert!(
        compatible
            .stdout
            .contains("~ order.paid v1: changed (compatible)")
    );
}

#[test]
fn diff_removed_versions_break_unless_deprecated() {
    let dir = generated("removed");
    let old = catalog_dir(&dir).join("catalog.json");
    let remove = |name: &str, version: u64| {
        let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&old).unwrap()).unwrap();
        doc["events"]
            .as_array_mut()
            .unwrap()
            .retain(|e| !(e["name"] == name && e["version"] == version));
        let path = dir.path().join(format!("without-{name}-{version}.json"));
        std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
        path
    };
    let without_v1 = remove("invoice.issued", 1); // deprecated
    let run_v1 = run(&["diff", s(&old), s(&without_v1)]);
    assert_eq!(run_v1.code, 0, "{}", run_v1.stdout);
    assert!(run_v1.stdout.contains("- invoice.issued v1: removed"));

    let without_paid = remove("order.paid", 1);
    let run_paid = run(&["diff", s(&old), s(&without_paid)]);
    assert_eq!(run_paid.code, 1, "{}", run_paid.stdout);
    assert!(
        run_paid.stdout.contains("order.paid v1: the event is gone"),
        "{}",
        run_paid.stdout
    );
    assert!(
        run_paid.stdout.contains("[version-removed;"),
        "{}",
        run_paid.stdout
    );

    let added = run(&["diff", s(&without_paid), s(&old)]);
    assert_eq!(added.code, 0);
    assert!(added.stdout.contains("+ order.paid v1: added"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&[]).code, 2);
    assert_eq!(run(&["generate"]).code, 2);
    let bad_mode = run(&["check", "--out", "x", "--mode", "sideways"]);
    assert_eq!(bad_mode.code, 2);
    assert!(bad_mode.stderr.contains("sideways"), "{}", bad_mode.stderr);
    let help = run(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("Exit codes: 0 success"),
        "{}",
        help.stdout
    );
}

#[test]
fn sealed_pii_describes_personal_fields_as_field_encryption_writes_them() {
    let dir = TempDir::new("sealed-pii");
    let out = dir.path().join("catalog");
    let run_generate = run(&["generate", "--out", s(&out), "--sealed-pii"]);
    assert_eq!(run_generate.code, 0, "{}", run_generate.stderr);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("schemas/order.created.v1.json")).unwrap(),
    )
    .unwrap();
    let email = &schema["properties"]["customer_email"];
    assert_eq!(email["type"], "string", "{email}");
    assert_eq!(email["pattern"], "^enc:v1:[A-Za-z0-9_-]+$");
    assert!(schema["properties"]["order_id"].get("pattern").is_none());
    let asyncapi = std::fs::read_to_string(out.join("asyncapi.json")).unwrap();
    assert!(
        asyncapi.contains("^enc:v1:"),
        "AsyncAPI carries the sealed form"
    );
    // Checked with the same choice it is current; without it, stale.
    let current = run(&["check", "--out", s(&out), "--sealed-pii"]);
    assert_eq!(current.code, 0, "{}{}", current.stdout, current.stderr);
    let plain = run(&["check", "--out", s(&out)]);
    assert_eq!(plain.code, 1, "{}{}", plain.stdout, plain.stderr);
}

#[test]
fn the_eventcatalog_format_generates_checks_and_removes_only_its_own_files() {
    let dir = TempDir::new("eventcatalog");
    let out = dir.path().join("eventcatalog");
    let generate = run(&["generate", "--format", "eventcatalog", "--out", s(&out)]);
    assert_eq!(generate.code, 0, "{}{}", generate.stdout, generate.stderr);
    assert!(
        generate
            .stdout
            .contains("17 events: 49 files written, 0 unchanged, 0 removed"),
        "{}",
        generate.stdout
    );
    assert!(
        out.join("events/invoice.issued/versioned/1.0.0/index.mdx")
            .is_file()
    );
    assert!(!out.join("catalog.json").exists());

    let check = run(&["check", "--format", "eventcatalog", "--out", s(&out)]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check
            .stdout
            .contains("is current (17 events, 4 warning(s))"),
        "{}",
        check.stdout
    );
    // The same producer and consumer warnings as the default format's check.
    assert_eq!(warning_lines(&check.stdout).len(), 4, "{}", check.stdout);

    // the config is the user's: edited, it is neither checked nor overwritten
    let config = out.join("eventcatalog.config.js");
    std::fs::write(&config, "export default { title: 'Orders' };\n").unwrap();
    // a generated page of an event that is gone, and a page written by hand
    let gone = out.join("events/order.refunded");
    std::fs::create_dir_all(&gone).unwrap();
    let page = std::fs::read_to_string(out.join("events/order.paid/index.mdx")).unwrap();
    std::fs::write(
        gone.join("index.mdx"),
        page.replace("order.paid", "order.refunded"),
    )
    .unwrap();
    std::fs::write(gone.join("schema.json"), "{}\n").unwrap();
    let manual = out.join("services/legacy-gateway/index.mdx");
    std::fs::create_dir_all(manual.parent().unwrap()).unwrap();
    std::fs::write(&manual, "---\nid: legacy-gateway\n---\n").unwrap();

    let check = run(&["check", "--format", "eventcatalog", "--out", s(&out)]);
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    assert!(
        check
            .stdout
            .contains("run `generate --format eventcatalog --out"),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("extra:   events/order.refunded/index.mdx"),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("extra:   events/order.refunded/schema.json"),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("legacy-gateway"), "{}", check.stdout);
    assert!(
        !check.stdout.contains("eventcatalog.config.js"),
        "{}",
        check.stdout
    );

    let generate = run(&["generate", "--format", "eventcatalog", "--out", s(&out)]);
    assert!(
        generate
            .stdout
            .contains("removed events/order.refunded/index.mdx"),
        "{}",
        generate.stdout
    );
    assert!(!gone.exists());
    assert!(manual.is_file());
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "export default { title: 'Orders' };\n"
    );
    let check = run(&["check", "--format", "eventcatalog", "--out", s(&out)]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
}

/// The lines of `check`'s output that are warnings.
fn warning_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect()
}
