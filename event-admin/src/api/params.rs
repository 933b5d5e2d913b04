//! Query parameters, read one by one so that a bad one is answered 400 with its name, and
//! an unknown one is not silently ignored.

use super::error::ApiError;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The largest page any list returns; a larger `limit` is lowered to it.
pub const MAX_PAGE: usize = 500;
/// The page size when no `limit` is given.
pub const DEFAULT_PAGE: usize = 50;

/// A request's query parameters, taken as a handler reads them.
#[derive(Debug, Default)]
pub(crate) struct Params(BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_parameter("query", rejection.body_text()))?;
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            if map.insert(name.clone(), value).is_some() {
                return Err(ApiError::bad_parameter(&name, "given more than once"));
            }
        }
        Ok(Params(map))
    }
}

impl Params {
    /// The text of `name`, if given (an empty value counts as not given).
    pub(crate) fn text(&mut self, name: &str) -> Option<String> {
        self.0.remove(name).filter(|value| !value.is_empty())
    }

    /// The page size: [`DEFAULT_PAGE`] when not given, at most [`MAX_PAGE`].
    pub(crate) fn limit(&mut self) -> Result<usize, ApiError> {
        match self.number("limit")? {
            None => Ok(DEFAULT_PAGE),
            Some(0) => Err(ApiError::bad_parameter("limit", "must be at least 1")),
            Some(limit) => Ok(usize::try_from(limit).unwrap_or(MAX_PAGE).min(MAX_PAGE)),
        }
    }

    /// A whole number.
    pub(crate) fn number(&mut self, name: &str) -> Result<Option<u64>, ApiError> {
        self.text(name)
            .map(|value| {
                value.parse::<u64>().map_err(|_| {
                    ApiError::bad_parameter(name, format!("not a whole number: {value:?}"))
                })
            })
            .transpose()
    }

    /// An RFC 3339 time.
    pub(crate) fn time(&mut self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.text(name)
            .map(|value| {
                DateTime::parse_from_rfc3339(&value)
                    .map(|time| time.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::bad_parameter(
                            name,
                            format!("not an RFC 3339 time like 2026-01-31T12:00:00Z: {value:?}"),
                        )
                    })
            })
            .transpose()
    }

    /// `newest` or `oldest` (the default `default`).
    pub(crate) fn newest_first(&mut self, default: bool) -> Result<bool, ApiError> {
        match self.text("order").as_deref() {
            None => Ok(default),
            Some("newest") => Ok(true),
            Some("oldest") => Ok(false),
            Some(other) => Err(ApiError::bad_parameter(
                "order",
                format!("must be newest or oldest, not {other:?}"),
            )),
        }
    }

    /// 400 for any parameter not read: a typo must not pass for "no filter".
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        match self.0.into_keys().next() {
            None => Ok(()),
            Some(name) => Err(ApiError::bad_parameter(&name, "unknown parameter")),
        }
    }
}

/// One page of a list held in memory, sorted by `key`: the items after `cursor` (a key
/// given back as the previous page's `next_cursor`), at most `limit`.
pub(crate) fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    cursor: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let mut after: Vec<T> = items
        .into_iter()
        .filter(|item| cursor.is_none_or(|cursor| key(item).as_str() > cursor))
        .collect();
    let more = after.len() > limit;
    after.truncate(limit);
    let next = if more { after.last().map(&key) } else { None };
    (after, next)
}
