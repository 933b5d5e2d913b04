//! The command line: `generate`, `check` and `diff`, for a three-line binary that links the
//! domain crates.

use crate::compat::{Mode, Profile};
use crate::error::CatalogError;
use crate::format::Format;
use crate::model::Catalog;
use clap::{Parser, Subcommand, ValueEnum};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code: success; for `check`, the catalog is current and compatible.
pub const EXIT_OK: u8 = 0;
/// Exit code: `check` found stale files or incompatible changes; `diff` found incompatible
/// changes.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: a usage error, or an input that cannot be used (a missing, unreadable or
/// corrupt `catalog.json`, an invalid registry, no events linked, a failed write).
pub const EXIT_ERROR: u8 = 2;

/// Generates the event catalog of the events linked into this binary, and checks it.
#[derive(Debug, Parser)]
#[command(
    about,
    after_help = "Exit codes: 0 success; 1 check failed (stale files or incompatible changes) or diff found incompatible changes; 2 usage or input error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes the catalog to DIR: README.md, events/*.md, catalog.json, schemas/*.json,
    /// asyncapi.json (or, with --format eventcatalog, an EventCatalog project folder). Deletes
    /// the files of events that are gone.
    Generate {
        /// The catalog directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        format: FormatArgs,
        #[command(flatten)]
        wire: WireArgs,
    },
    /// Fails when DIR is stale, or when a schema changed incompatibly against DIR/catalog.json
    /// without a version bump. With --format eventcatalog, DIR has no catalog.json: only
    /// staleness is checked, and --mode and --strict do not apply.
    Check {
        /// The catalog directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        format: FormatArgs,
        #[command(flatten)]
        wire: WireArgs,
        #[command(flatten)]
        compat: CompatArgs,
    },
    /// Compares two catalog.json files and reports added, removed and changed events and
    /// incompatible changes.
    Diff {
        /// The old catalog.json.
        old: PathBuf,
        /// The new catalog.json.
        new: PathBuf,
        /// text: one line per change, then the incompatible changes; markdown: a changelog
        /// for a release note or a pull-request comment.
        #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
        format: DiffFormat,
        #[command(flatten)]
        compat: CompatArgs,
    },
}

#[derive(Debug, clap::Args)]
struct FormatArgs {
    /// The layout of DIR: catalog (README.md, events/*.md, catalog.json, schemas/*.json,
    /// asyncapi.json) or eventcatalog (an EventCatalog project: events/, services/, domains/
    /// as MDX; eventcatalog.config.js, package.json, .eventcatalogrc.js and .gitignore are
    /// written only when absent, and never checked).
    #[arg(long, value_enum, default_value_t = FormatArg::Catalog)]
    format: FormatArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Catalog,
    #[value(name = "eventcatalog")]
    EventCatalog,
}

impl FormatArgs {
    fn format(&self) -> Format {
        match self.format {
            FormatArg::Catalog => Format::Catalog,
            FormatArg::EventCatalog => Format::EventCatalog,
        }
    }

    /// The `--format` argument to repeat in a hint, empty for the default.
    fn flag(&self) -> &'static str {
        match self.format {
            FormatArg::Catalog => "",
            FormatArg::EventCatalog => "--format eventcatalog ",
        }
    }
}

#[derive(Debug, clap::Args)]
struct WireArgs {
    /// Describe the `pii` fields as field encryption puts them on the wire: sealed strings
    /// (`enc:v1:...`). Generate and check with the same choice.
    #[arg(long)]
    sealed_pii: bool,
}

#[derive(Debug, clap::Args)]
struct CompatArgs {
    /// Which readers must keep working: backward (new readers, old events), forward (old
    /// readers, new events) or full (both).
    #[arg(long, value_enum, default_value_t = ModeArg::Backward)]
    mode: ModeArg,
    /// Judge the schemas alone, as schema registries do, instead of as serde reads.
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DiffFormat {
    Text,
    Markdown,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Backward,
    Forward,
    Full,
}

impl CompatArgs {
    fn mode(&self) -> Mode {
        match self.mode {
            ModeArg::Backward => Mode::Backward,
            ModeArg::Forward => Mode::Forward,
            ModeArg::Full => Mode::Full,
        }
    }

    fn profile(&self) -> Profile {
        if self.strict {
            Profile::Strict
        } else {
            Profile::Serde
        }
    }
}

/// Runs the catalog command line on the events linked into the binary.
///
/// The whole `main.rs` of a catalog binary (link the domain crates, then call this):
///
/// ```no_run
/// # #![allow(unused_imports)]
/// # mod orders {}
/// use orders as _; // link the events
/// fn main() -> std::process::ExitCode { event_catalog::main() }
/// ```
///
/// Commands:
///
/// - `generate --out DIR [--format catalog|eventcatalog] [--sealed-pii]` writes the catalog
///   (nothing is written if rendering fails, or no events are linked) in this crate's layout
///   or as an EventCatalog project ([`Format`]); `--sealed-pii` describes PII fields as
///   field encryption puts them on the wire ([`Catalog::sealed_pii`]);
/// - `check --out DIR [--format catalog|eventcatalog] [--sealed-pii] [--mode backward|forward|full] [--strict]`
///   fails when DIR is stale, or when an event version in both DIR/catalog.json and the
///   binary changed incompatibly, or when one disappeared without being deprecated first
///   (with `--format eventcatalog`, staleness only: the folder has no `catalog.json`);
/// - `diff OLD NEW [--format text|markdown] [--mode ...] [--strict]` compares two
///   `catalog.json` files; `--format markdown` writes a changelog
///   ([`Report::to_markdown`](crate::Report::to_markdown)).
///
/// `check` also prints warnings, which do not fail it: an event nobody consumes, and a
/// consumer of an event nobody produces ([`Catalog::warnings`]).
///
/// Exit codes: [`EXIT_OK`] (0) success, [`EXIT_FAILED`] (1) a check or diff found a problem,
/// [`EXIT_ERROR`] (2) usage or input error; errors name the file, and for a corrupt
/// `catalog.json` the line and column.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() {
                EXIT_ERROR
            } else {
                EXIT_OK
            });
        }
    };
    let code = match run(&cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", chain(&err));
            EXIT_ERROR
        }
    };
    ExitCode::from(code)
}

fn run(command: &Command) -> Result<u8, CatalogError> {
    match command {
        Command::Generate { out, format, wire } => generate(out, format, wire),
        Command::Check {
            out,
            format,
            wire,
            compat,
        } => check(out, format, wire, compat),
        Command::Diff {
            old,
            new,
            format,
            compat,
        } => {
            let old = Catalog::read(old)?;
            let new = Catalog::read(new)?;
            let report = Catalog::compare(&old, &new, compat.mode(), compat.profile());
            if *format == DiffFormat::Markdown {
                print!("{}", report.to_markdown(&old, &new));
            } else if report.added.is_empty()
                && report.removed.is_empty()
                && report.changed.is_empty()
            {
                println!("no changes");
            } else {
                print!("{report}");
            }
            Ok(if report.is_compatible() {
                EXIT_OK
            } else {
                EXIT_FAILED
            })
        }
    }
}

fn linked(wire: &WireArgs) -> Result<Option<Catalog>, CatalogError> {
    let mut catalog = Catalog::linked()?;
    if wire.sealed_pii {
        catalog = catalog.sealed_pii();
    }
    if catalog.is_empty() {
        eprintln!(
            "error: no events are linked into this binary: reference the crates that define them, e.g. `use orders_domain as _;`"
        );
        return Ok(None);
    }
    Ok(Some(catalog))
}

fn generate(out: &Path, format: &FormatArgs, wire: &WireArgs) -> Result<u8, CatalogError> {
    let Some(catalog) = linked(wire)? else {
        return Ok(EXIT_ERROR);
    };
    let summary = catalog.write_as(out, format.format())?;
    println!(
        "{} events: {} files written, {} unchanged, {} removed in {}",
        catalog.events().len(),
        summary.written.len(),
        summary.unchanged.len(),
        summary.removed.len(),
        out.display()
    );
    for path in &summary.removed {
        println!("removed {path}");
    }
    Ok(EXIT_OK)
}

fn check(
    out: &Path,
    format: &FormatArgs,
    wire: &WireArgs,
    compat: &CompatArgs,
) -> Result<u8, CatalogError> {
    let Some(catalog) = linked(wire)? else {
        return Ok(EXIT_ERROR);
    };
    let staleness = catalog.staleness_as(out, format.format())?;
    let stale = |staleness: &crate::check::Staleness| {
        println!(
            "the catalog in {} is stale: run `generate {}--out {}`",
            out.display(),
            format.flag(),
            out.display()
        );
        print!("{staleness}");
    };
    if format.format() == Format::EventCatalog {
        let warned = print_warnings(&catalog);
        if !staleness.is_current() {
            stale(&staleness);
            return Ok(EXIT_FAILED);
        }
        println!(
            "the EventCatalog folder {} is current ({} events{warned})",
            out.display(),
            catalog.events().len()
        );
        return Ok(EXIT_OK);
    }
    let committed = Catalog::read(out.join("catalog.json"))?;
    let report = Catalog::compare(&committed, &catalog, compat.mode(), compat.profile());
    let mut failed = false;
    if !staleness.is_current() {
        failed = true;
        stale(&staleness);
    }
    if !report.is_compatible() {
        failed = true;
        if !staleness.is_current() {
            println!();
        }
        println!(
            "{} incompatible change(s) against {} without a version bump:",
            report.findings.len(),
            out.join("catalog.json").display()
        );
        for finding in &report.findings {
            println!("{finding}");
        }
    }
    let warned = print_warnings(&catalog);
    if failed {
        return Ok(EXIT_FAILED);
    }
    println!(
        "the catalog in {} is current ({} events{warned})",
        out.display(),
        catalog.events().len(),
    );
    Ok(EXIT_OK)
}

/// Prints the catalog's warnings (they fail nothing); returns `, N warning(s)` for the
/// summary line, or nothing.
fn print_warnings(catalog: &Catalog) -> String {
    let warnings = catalog.warnings();
    for warning in &warnings {
        println!("warning: {warning}");
    }
    match warnings.len() {
        0 => String::new(),
        n => format!(", {n} warning(s)"),
    }
}

/// The error and its causes, joined by `: `.
fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
