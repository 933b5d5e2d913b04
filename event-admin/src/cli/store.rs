//! The commands against a store opened directly (`--store sqlite:PATH`, `--store
//! postgres:URL`).
//!
//! What only the running service has (its subscriptions' handlers, their counters, the list
//! of its subscriptions) is not here: `dlq redeliver` needs `--url`, and `subscriptions`
//! shows the subscriptions the store has dead letters of, plus those named.

use super::output::{self, Out};
use super::{Command, Dlq, Failure, HealthArgs, Outcome, ReplayArgs, TailArgs, TimelineArgs};
use super::{EXIT_FAILED, EXIT_OK, chain, letter_id, parse_letter_id};
use crate::api::{dead_letters, events};
use crate::redact;
use crate::{CheckView, HealthView};
use event_core::Registry;
use event_core::privacy::KeyStore;
use event_core::store::tokio_postgres::Config;
use event_core::store::{
    EventQuery, PostgresStore, SqliteStore, Store, StoreError, StoredDeadLetter, StoredEvent,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A store opened directly, with the events this binary knows (for PII redaction).
pub(crate) struct Direct {
    store: Arc<dyn Store>,
    /// The same store as a key store: the events' fields erased by crypto-shredding.
    keys: Arc<dyn KeyStore>,
    registry: Registry,
    /// The store, for messages: `sqlite:PATH`, `postgres HOST:PORT/DB`.
    label: String,
}

/// A store error as a failure: an input that is not a usable store (or a bad cursor) is an
/// input error, anything else the store failing.
fn failure(doing: &str, error: &StoreError) -> Failure {
    let message = format!("{doing}: {}", chain(error));
    match error {
        StoreError::Corrupt { .. }
        | StoreError::Foreign { .. }
        | StoreError::SchemaTooNew { .. }
        | StoreError::SchemaTooOld { .. }
        | StoreError::InvalidCursor { .. } => Failure::usage(message),
        _ => Failure::unreachable(message),
    }
}

/// The registry of the events linked into the binary; with an invalid one, every payload
/// is redacted whole (as the API does).
fn registry() -> Registry {
    event_core::registry().unwrap_or_else(|error| {
        eprintln!("warning: the event registry is invalid ({error}): every payload is redacted");
        Registry::from_descriptors([]).unwrap_or_else(|_| unreachable!())
    })
}

impl Direct {
    /// Opens the SQLite store in the file at `path`, read-only unless `writable`. A missing
    /// file is not created.
    pub(crate) fn sqlite(path: &Path, writable: bool) -> Result<Direct, Failure> {
        let label = format!("sqlite:{}", path.display());
        match path.try_exists() {
            Ok(true) => {}
            Ok(false) => {
                return Err(Failure::unreachable(format!(
                    "cannot open {label}: no such file"
                )));
            }
            Err(error) => {
                return Err(Failure::unreachable(format!(
                    "cannot open {label}: {error}"
                )));
            }
        }
        let store = SqliteStore::options()
            .read_only(!writable)
            .open(path)
            .map_err(|e| failure(&format!("cannot open {label}"), &e))?;
        Ok(Direct {
            keys: Arc::new(store.clone()),
            store: Arc::new(store),
            registry: registry(),
            label,
        })
    }

    /// Connects to the PostgreSQL store at `url` (a `postgresql://` URL or `host=...`), within
    /// 10 s unless the URL sets its own `connect_timeout`.
    pub(crate) async fn postgres(url: &str) -> Result<Direct, Failure> {
        let mut config: Config = url.parse().map_err(|e| {
            Failure::usage(format!(
                "--store postgres:URL: not a connection string: {e}"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let label = PostgresStore::describe(&config);
        let store = PostgresStore::connect_existing(config)
            .await
            .map_err(|e| failure(&format!("cannot connect to {label}"), &e))?;
        Ok(Direct {
            keys: Arc::new(store.clone()),
            store: Arc::new(store),
            registry: registry(),
            label,
        })
    }

    pub(crate) async fn run(&self, command: &Command, out: Out) -> Outcome {
        match command {
            Command::Subscriptions { names } => self.subscriptions(names, out).await,
            Command::Dlq(Dlq::List { subscription }) => {
                let letters = self.letters(subscription.as_deref()).await?;
                let mut views = Vec::with_capacity(letters.len());
                for letter in &letters {
                    views.push(self.letter_view(letter).await);
                }
                out.document(&json!({ "dead_letters": views }), output::dead_letters);
                Ok(EXIT_OK)
            }
            Command::Dlq(Dlq::Show { id }) => {
                let letter = self.find(id).await?;
                out.document(&self.letter_view(&letter).await, output::dead_letter);
                Ok(EXIT_OK)
            }
            Command::Dlq(Dlq::Redeliver { id }) => Err(Failure::usage(format!(
                "dlq redeliver {id}: redelivering needs the running service, whose subscription handles the event again; use --url http://HOST:PORT (its admin API, with {} set)",
                crate::TOKEN_ENV
            ))),
            Command::Dlq(Dlq::Discard { id }) => {
                let letter = self.find(id).await?;
                let removed = self
                    .store
                    .remove_dead_letter(letter.id)
                    .await
                    .map_err(|e| failure(&format!("cannot discard dead letter {id}"), &e))?;
                if !removed {
                    return Err(self.no_letter(id));
                }
                out.document(&json!({ "id": id, "action": "discarded" }), output::action);
                Ok(EXIT_OK)
            }
            Command::Replay(args) => self.replay(args, out).await,
            Command::Timeline(args) => self.timeline(args, out).await,
            Command::Tail(args) => self.tail(args, out).await,
            Command::Health(args) => self.health(args, out).await,
        }
    }

    async fn head(&self) -> Result<u64, Failure> {
        self.store
            .head()
            .await
            .map_err(|e| failure(&format!("cannot read the head of {}", self.label), &e))
    }

    async fn checkpoint(&self, name: &str) -> Result<u64, Failure> {
        self.store
            .checkpoint(name)
            .await
            .map_err(|e| failure(&format!("cannot read the checkpoint of {name:?}"), &e))
    }

    /// The stored dead letters (of `subscription`), oldest first, as the API orders them.
    async fn letters(&self, subscription: Option<&str>) -> Result<Vec<StoredDeadLetter>, Failure> {
        let mut letters = self.store.dead_letters(subscription).await.map_err(|e| {
            failure(
                &format!("cannot read the dead letters of {}", self.label),
                &e,
            )
        })?;
        letters.sort_by_key(|l| {
            (
                l.failed_at.timestamp_millis(),
                letter_id(l.envelope.id, &l.subscription),
            )
        });
        Ok(letters)
    }

    fn no_letter(&self, id: &str) -> Failure {
        Failure::failed(format!("no dead letter {id} in {}", self.label))
    }

    async fn find(&self, id: &str) -> Result<StoredDeadLetter, Failure> {
        let (event_id, subscription) = parse_letter_id(id)?;
        self.letters(Some(subscription))
            .await?
            .into_iter()
            .find(|l| l.envelope.id == event_id && l.subscription == subscription)
            .ok_or_else(|| self.no_letter(id))
    }

    async fn letter_view(&self, letter: &StoredDeadLetter) -> Value {
        let letter = event_core::DeadLetter::from(letter.clone());
        let erased = redact::erased(Some(&*self.keys), &letter.envelope).await;
        serde_json::to_value(dead_letters::view(&self.registry, &letter, &erased))
            .unwrap_or(Value::Null)
    }

    async fn event_view(&self, event: &StoredEvent) -> Value {
        let erased = redact::erased(Some(&*self.keys), &event.envelope).await;
        serde_json::to_value(events::view(&self.registry, event, &erased)).unwrap_or(Value::Null)
    }

    /// The subscriptions the store has checkpoints or dead letters of (or those named),
    /// with checkpoint and lag.
    async fn subscriptions(&self, names: &[String], out: Out) -> Outcome {
        let head = self.head().await?;
        let mut kept: BTreeMap<String, u64> = BTreeMap::new();
        for letter in self.letters(None).await? {
            *kept.entry(letter.subscription).or_default() += 1;
        }
        let names: BTreeSet<String> = if names.is_empty() {
            let mut known: BTreeSet<String> = kept.keys().cloned().collect();
            match self.store.checkpoints().await {
                Ok(checkpoints) => known.extend(checkpoints.into_iter().map(|(name, _)| name)),
                Err(StoreError::Unsupported { .. }) => eprintln!(
                    "note: this store lists no checkpoints: shown are the subscriptions with dead letters; name others (`subscriptions NAME...`), or use --url for the service's"
                ),
                Err(error) => {
                    return Err(failure(
                        &format!("cannot list the checkpoints of {}", self.label),
                        &error,
                    ));
                }
            }
            known
        } else {
            names.iter().cloned().collect()
        };
        let mut rows = Vec::new();
        for name in names {
            let checkpoint = self.checkpoint(&name).await?;
            rows.push(json!({
                "name": name,
                "checkpoint": checkpoint,
                "lag": head.saturating_sub(checkpoint),
                "dead_letters": kept.get(&name).copied().unwrap_or(0),
            }));
        }
        out.document(
            &json!({ "head": head, "subscriptions": rows }),
            output::subscriptions,
        );
        Ok(EXIT_OK)
    }

    /// Resets the stored checkpoint, then with `--wait` follows it up to the head.
    async fn replay(&self, args: &ReplayArgs, out: Out) -> Outcome {
        let name = args.name.as_str();
        let head = self.head().await?;
        if args.from > head {
            return Err(Failure::usage(format!(
                "--from {}: past the head of {} (position {head})",
                args.from, self.label
            )));
        }
        if !args.force
            && self.checkpoint(name).await? == 0
            && self.letters(Some(name)).await?.is_empty()
        {
            return Err(Failure::failed(format!(
                "{} knows no subscription {name:?} (no checkpoint past 0, no dead letters): check the name, or pass --force to set its checkpoint anyway",
                self.label
            )));
        }
        self.store
            .reset_checkpoint(name, args.from)
            .await
            .map_err(|e| failure(&format!("cannot reset the checkpoint of {name:?}"), &e))?;
        eprintln!(
            "note: the stored checkpoint of {name} is reset to {}: a service picks it up when it (re)starts the subscription; to replay in a running service, use --url",
            args.from
        );
        let mut done = json!({ "id": name, "action": "replaying", "from": args.from });
        if args.wait {
            let (checkpoint, _) =
                super::wait_caught_up(out, name, args.from, args.timeout, async || {
                    let checkpoint = self.checkpoint(name).await?;
                    Ok((checkpoint, self.head().await?))
                })
                .await?;
            done["checkpoint"] = json!(checkpoint);
            done["lag"] = json!(0);
        }
        out.document(&done, output::action);
        Ok(EXIT_OK)
    }

    async fn timeline(&self, args: &TimelineArgs, out: Out) -> Outcome {
        let mut query = EventQuery::new()
            .partition_key(args.key.clone())
            .event_types(args.types.clone())
            .limit(args.limit.max(1));
        if args.newest {
            query = query.newest_first();
        }
        if let Some(cursor) = &args.cursor {
            query = query.cursor(cursor.clone());
        }
        let page = self.store.query(&query).await.map_err(|e| {
            failure(
                &format!(
                    "cannot read the timeline of {:?} in {}",
                    args.key, self.label
                ),
                &e,
            )
        })?;
        let mut events = Vec::with_capacity(page.events.len());
        for event in &page.events {
            events.push(self.event_view(event).await);
        }
        out.document(
            &json!({ "events": events, "next_cursor": page.next_cursor }),
            output::events,
        );
        Ok(EXIT_OK)
    }

    /// Prints the events after the head (or `--from`) as they are appended, until stdout
    /// closes.
    async fn tail(&self, args: &TailArgs, out: Out) -> Outcome {
        let mut after = match args.from {
            Some(from) => from,
            None => self.head().await?,
        };
        // PostgreSQL wakes us on appends; elsewhere we poll.
        let wake = Arc::new(tokio::sync::Notify::new());
        self.store.watch_appends(Arc::downgrade(&wake));
        let interval = Duration::from_millis(args.interval.max(10));
        loop {
            let batch = self
                .store
                .read(after, 500)
                .await
                .map_err(|e| failure(&format!("cannot read {}", self.label), &e))?;
            if batch.is_empty() {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = wake.notified() => {}
                }
                continue;
            }
            for event in &batch {
                after = event.position;
                if !event_core::matches_pattern(&args.pattern, &event.envelope.event_type) {
                    continue;
                }
                let view = self.event_view(event).await;
                let line = if out.json {
                    view.to_string()
                } else {
                    output::event_line(&view)
                };
                if !output::emit(&line) {
                    return Ok(EXIT_OK);
                }
            }
        }
    }

    /// The store reachable, and the lag of the subscriptions it knows under `--max-lag`.
    async fn health(&self, args: &HealthArgs, out: Out) -> Outcome {
        let mut checks = Vec::new();
        let head = match self.store.head().await {
            Ok(head) => {
                checks.push(check(
                    "store",
                    true,
                    format!("{} reachable, head at position {head}", self.label),
                ));
                Some(head)
            }
            Err(error) => {
                checks.push(check("store", false, chain(&error)));
                None
            }
        };
        let mut names: BTreeSet<String> = args.subscription.iter().cloned().collect();
        match self.store.checkpoints().await {
            Ok(checkpoints) => names.extend(checkpoints.into_iter().map(|(name, _)| name)),
            Err(StoreError::Unsupported { .. }) => {}
            Err(error) => checks.push(check("checkpoints", false, chain(&error))),
        }
        match self.store.dead_letters(None).await {
            Ok(letters) => names.extend(letters.into_iter().map(|l| l.subscription)),
            Err(error) => checks.push(check("dead letters", false, chain(&error))),
        }
        if let Some(head) = head {
            for name in names {
                let check_name = format!("lag:{name}");
                checks.push(match self.store.checkpoint(&name).await {
                    Ok(checkpoint) => {
                        let lag = head.saturating_sub(checkpoint);
                        check(
                            &check_name,
                            lag <= args.max_lag,
                            format!("lag {lag} (threshold {})", args.max_lag),
                        )
                    }
                    Err(error) => check(&check_name, false, chain(&error)),
                });
            }
        }
        let healthy = checks.iter().all(|c| c.ok);
        let view = HealthView {
            status: if healthy { "ok" } else { "unhealthy" }.to_owned(),
            checks,
        };
        out.document(
            &serde_json::to_value(view).unwrap_or(Value::Null),
            output::health,
        );
        Ok(if healthy { EXIT_OK } else { EXIT_FAILED })
    }
}

fn check(name: &str, ok: bool, detail: String) -> CheckView {
    CheckView {
        name: name.to_owned(),
        ok,
        detail,
    }
}
