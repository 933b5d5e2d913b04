//! The commands against a running service's admin API (`--url`), with the bearer token of
//! `EVENT_ADMIN_TOKEN`. The service redacts PII; its JSON is printed as it comes.

use super::output::{self, Out};
use super::{Command, Dlq, EXIT_FAILED, EXIT_OK, Failure, Outcome, chain};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use std::time::Duration;

/// The admin API at a base URL.
struct Remote {
    base: Url,
    token: Option<String>,
    client: reqwest::Client,
}

pub(crate) async fn run(base: Url, command: &Command, out: Out) -> Outcome {
    let remote = Remote::new(base)?;
    match command {
        Command::Subscriptions { names } => remote.subscriptions(names, out).await,
        Command::Dlq(Dlq::List { subscription }) => {
            let query: Vec<(&str, String)> = subscription
                .iter()
                .map(|name| ("subscription", name.clone()))
                .collect();
            let letters = remote
                .all(&["v1", "dead-letters"], "dead_letters", &query)
                .await?;
            out.document(&json!({ "dead_letters": letters }), output::dead_letters);
            Ok(EXIT_OK)
        }
        Command::Dlq(Dlq::Show { id }) => {
            let letter = remote
                .request(Method::GET, &["v1", "dead-letters", id], &[])
                .await?;
            out.document(&letter, output::dead_letter);
            Ok(EXIT_OK)
        }
        Command::Dlq(Dlq::Redeliver { id }) => {
            let done = remote
                .request(Method::POST, &["v1", "dead-letters", id, "redeliver"], &[])
                .await?;
            out.document(&done, output::action);
            Ok(EXIT_OK)
        }
        Command::Dlq(Dlq::Discard { id }) => {
            let done = remote
                .request(Method::DELETE, &["v1", "dead-letters", id], &[])
                .await?;
            out.document(&done, output::action);
            Ok(EXIT_OK)
        }
        Command::Replay(args) => remote.replay(args, out).await,
        Command::Timeline(args) => {
            let mut query = vec![("key", args.key.clone()), ("limit", args.limit.to_string())];
            if !args.types.is_empty() {
                query.push(("type", args.types.join(",")));
            }
            if args.newest {
                query.push(("order", "newest".to_owned()));
            }
            if let Some(cursor) = &args.cursor {
                query.push(("cursor", cursor.clone()));
            }
            let page = remote
                .request(Method::GET, &["v1", "events"], &query)
                .await?;
            out.document(&page, output::events);
            Ok(EXIT_OK)
        }
        Command::Tail(args) => remote.tail(args, out).await,
        Command::Health(_) => remote.health(out).await,
    }
}

impl Remote {
    /// The service's subscriptions (only those named, if any): exit 1 when a name is not
    /// one of them.
    async fn subscriptions(&self, names: &[String], out: Out) -> Outcome {
        let name_of = |s: &Value| s.get("name").and_then(Value::as_str).map(str::to_owned);
        let mut subscriptions = self
            .all(&["v1", "subscriptions"], "subscriptions", &[])
            .await?;
        if !names.is_empty() {
            subscriptions.retain(|s| name_of(s).is_some_and(|name| names.contains(&name)));
        }
        let missing: Vec<&String> = names
            .iter()
            .filter(|name| {
                !subscriptions
                    .iter()
                    .any(|s| name_of(s).as_ref() == Some(name))
            })
            .collect();
        out.document(
            &json!({ "subscriptions": subscriptions }),
            output::subscriptions,
        );
        if missing.is_empty() {
            Ok(EXIT_OK)
        } else {
            Err(Failure::failed(format!(
                "the service at {} has no subscription {missing:?}",
                self.base
            )))
        }
    }

    /// Asks the service to replay; with `--wait`, follows the subscription to lag 0.
    async fn replay(&self, args: &super::ReplayArgs, out: Out) -> Outcome {
        let name = args.name.as_str();
        let mut done = self
            .request(
                Method::POST,
                &["v1", "subscriptions", name, "replay"],
                &[("from", args.from.to_string())],
            )
            .await?;
        done["from"] = json!(args.from);
        if args.wait {
            let (checkpoint, _) =
                super::wait_caught_up(out, name, args.from, args.timeout, async || {
                    self.progress(name).await
                })
                .await?;
            done["checkpoint"] = json!(checkpoint);
            done["lag"] = json!(0);
        }
        out.document(&done, output::action);
        Ok(EXIT_OK)
    }

    /// `GET /health`: exit 0 when healthy (200), 1 when not (503).
    async fn health(&self, out: Out) -> Outcome {
        let url = self.url(&["health"], &[]);
        let (status, health) = self.call(Method::GET, url.clone()).await?;
        let answered = status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE;
        if !answered || health.get("checks").is_none() {
            return Err(refused(&format!("GET {url}"), status, &health));
        }
        out.document(&health, output::health);
        Ok(if status == StatusCode::OK {
            EXIT_OK
        } else {
            EXIT_FAILED
        })
    }

    fn new(base: Url) -> Result<Remote, Failure> {
        let token = std::env::var(crate::TOKEN_ENV)
            .ok()
            .map(|token| token.trim().to_owned())
            .filter(|token| !token.is_empty());
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| {
                Failure::unreachable(format!("cannot make an HTTP client: {}", chain(&e)))
            })?;
        Ok(Remote {
            base,
            token,
            client,
        })
    }

    /// The base URL with `segments` added to its path (each percent-encoded) and `query`.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends a request: the answer's status and JSON body (a text body as a JSON string).
    async fn call(&self, method: Method, url: Url) -> Result<(StatusCode, Value), Failure> {
        let what = format!("{method} {url}");
        let mut request = self.client.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::unreachable(format!("cannot reach {what}: {}", chain(&e))))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            Failure::unreachable(format!("{what}: the answer broke off: {}", chain(&e)))
        })?;
        let value = serde_json::from_slice(&body).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&body).chars().take(300).collect())
        });
        Ok((status, value))
    }

    /// Sends a request and gives its JSON body, or fails with the API's error.
    async fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, Failure> {
        let url = self.url(segments, query);
        let what = format!("{method} {url}");
        let (status, value) = self.call(method, url).await?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(self.refused_with_hint(&what, status, &value))
        }
    }

    /// Every item of a paged list (`field` of each page), following `next_cursor`.
    async fn all(
        &self,
        segments: &[&str],
        field: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, Failure> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut page_query = query.to_vec();
            page_query.push(("limit", crate::MAX_PAGE.to_string()));
            if let Some(cursor) = &cursor {
                page_query.push(("cursor", cursor.clone()));
            }
            let mut page = self.request(Method::GET, segments, &page_query).await?;
            if let Some(Value::Array(page_items)) = page.get_mut(field).map(Value::take) {
                items.extend(page_items);
            }
            match page.get("next_cursor").and_then(Value::as_str) {
                Some(next) if cursor.as_deref() != Some(next) => cursor = Some(next.to_owned()),
                _ => return Ok(items),
            }
        }
    }

    /// The subscription's `(checkpoint, head)` as `/v1/subscriptions` tells them.
    async fn progress(&self, name: &str) -> Result<(u64, u64), Failure> {
        let subscriptions = self
            .all(&["v1", "subscriptions"], "subscriptions", &[])
            .await?;
        let found = subscriptions
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| {
                Failure::failed(format!(
                    "the service at {} has no subscription {name:?}",
                    self.base
                ))
            })?;
        let checkpoint = found.get("checkpoint").and_then(Value::as_u64);
        let lag = found.get("lag").and_then(Value::as_u64);
        match (checkpoint, lag) {
            (Some(checkpoint), Some(lag)) => Ok((checkpoint, checkpoint + lag)),
            _ => Err(Failure::failed(format!(
                "subscription {name}: its checkpoint or lag is unknown (a consumer group, or the store unreadable): cannot follow the replay"
            ))),
        }
    }

    /// Prints the events appended after the newest (or `--from`) as they come, until stdout
    /// closes or the service cannot be reached.
    async fn tail(&self, args: &super::TailArgs, out: Out) -> Outcome {
        let events = ["v1", "events"];
        let mut after = if let Some(from) = args.from {
            from
        } else {
            let newest = self
                .request(
                    Method::GET,
                    &events,
                    &[("order", "newest".to_owned()), ("limit", "1".to_owned())],
                )
                .await?;
            newest
                .pointer("/events/0/position")
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        // A pattern without `*` is one type: the service filters it.
        let only = (!args.pattern.contains('*')).then(|| args.pattern.clone());
        let interval = Duration::from_millis(args.interval.max(10));
        loop {
            // The store's cursors are `c{position}`: continue after the last event seen.
            let mut query = vec![
                ("cursor", format!("c{after}")),
                ("limit", crate::MAX_PAGE.to_string()),
            ];
            if let Some(only) = &only {
                query.push(("type", only.clone()));
            }
            let page = self.request(Method::GET, &events, &query).await?;
            let batch = page
                .get("events")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if batch.is_empty() {
                tokio::time::sleep(interval).await;
                continue;
            }
            for event in &batch {
                if let Some(position) = event.get("position").and_then(Value::as_u64) {
                    after = after.max(position);
                }
                let event_type = event
                    .pointer("/event/type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !event_core::matches_pattern(&args.pattern, event_type) {
                    continue;
                }
                let line = if out.json {
                    event.to_string()
                } else {
                    output::event_line(event)
                };
                if !output::emit(&line) {
                    return Ok(EXIT_OK);
                }
            }
        }
    }

    /// [`refused`], telling where the token comes from when it was refused.
    fn refused_with_hint(&self, what: &str, status: StatusCode, body: &Value) -> Failure {
        let mut failure = refused(what, status, body);
        if status == StatusCode::UNAUTHORIZED {
            let hint = if self.token.is_some() {
                format!(" (the token is read from {})", crate::TOKEN_ENV)
            } else {
                format!(" ({} is not set)", crate::TOKEN_ENV)
            };
            failure.message.push_str(&hint);
        }
        failure
    }
}

/// An error answer as a failure: the request, the status and the API's message.
fn refused(what: &str, status: StatusCode, body: &Value) -> Failure {
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| body.as_str())
        .unwrap_or_default();
    let text = format!("{what}: {status}: {message}");
    match status.as_u16() {
        400 | 401 | 403 | 405 | 422 => Failure::usage(text),
        500.. => Failure::unreachable(text),
        _ => Failure::failed(text),
    }
}
