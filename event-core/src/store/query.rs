//! Searching the log: the events matching any of a partition key, types, a correlation id,
//! a tenant, a time range, page by page (what operators' timelines read).

use super::timeline::TimelineOrder;
use super::{Position, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A search of the store's log; every filter set must match (none set: every event).
///
/// Pages work as a [`TimelineQuery`](super::TimelineQuery)'s: stable under concurrent
/// appends, continued with the page's `next_cursor`. Only the partition key and the id are
/// indexed; the other filters scan (by position, a page at a time), which suits an
/// operator's search, not a hot path.
///
/// ```
/// use event_core::store::EventQuery;
///
/// let query = EventQuery::new()
///     .partition_key("o-1")
///     .event_types(["order.created", "order.paid"])
///     .correlation_id("req-7")
///     .limit(50)
///     .newest_first();
/// assert_eq!(query.event_types.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventQuery {
    /// Only events of this partition key (`meta.partition_key`).
    pub partition_key: Option<String>,
    /// Only events of one of these types; empty: any type.
    pub event_types: Vec<String>,
    /// Only events with this correlation id.
    pub correlation_id: Option<String>,
    /// Only events of this tenant (`meta.tenant_id`).
    pub tenant_id: Option<String>,
    /// Only the event with this id.
    pub id: Option<Uuid>,
    /// Only events appended to the store at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only events appended to the store before this time.
    pub until: Option<DateTime<Utc>>,
    /// Where the previous page ended: its `next_cursor`. None for the first page.
    pub cursor: Option<String>,
    /// At most this many events per page (default 100; at least 1, at most 10 000).
    pub limit: usize,
    /// Oldest or newest first.
    pub order: TimelineOrder,
}

impl Default for EventQuery {
    fn default() -> Self {
        EventQuery {
            partition_key: None,
            event_types: Vec::new(),
            correlation_id: None,
            tenant_id: None,
            id: None,
            from: None,
            until: None,
            cursor: None,
            limit: 100,
            order: TimelineOrder::OldestFirst,
        }
    }
}

impl EventQuery {
    /// Every event, oldest first, 100 per page.
    pub fn new() -> Self {
        EventQuery::default()
    }

    /// Only events of partition key `key`.
    #[must_use]
    pub fn partition_key(mut self, key: impl Into<String>) -> Self {
        self.partition_key = Some(key.into());
        self
    }

    /// Only events of these types.
    #[must_use]
    pub fn event_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.event_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Only events with correlation id `id`.
    #[must_use]
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Only events of tenant `tenant`.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant.into());
        self
    }

    /// Only the event with id `id`.
    #[must_use]
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// Only events appended in `[from, until)`; either end may be open.
    #[must_use]
    pub fn appended(mut self, from: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Self {
        self.from = from;
        self.until = until;
        self
    }

    /// Continues after a previous page: pass its `next_cursor`.
    #[must_use]
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// At most `limit` events per page.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The newest event first.
    #[must_use]
    pub fn newest_first(mut self) -> Self {
        self.order = TimelineOrder::NewestFirst;
        self
    }

    /// The position the cursor continues from (see
    /// [`TimelineQuery::cursor_position`](super::TimelineQuery::cursor_position)).
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidCursor`] for a cursor no store produced.
    pub fn cursor_position(&self) -> Result<Option<Position>, StoreError> {
        super::timeline::parse_cursor(self.cursor.as_deref())
    }
}

/// A value bound into a store's search.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) enum SqlValue {
    Text(String),
    Int(i64),
    Id(Uuid),
    Time(DateTime<Utc>),
}

/// How a store's SQL spells what the search needs.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) struct Dialect {
    /// The `n`th parameter (from 1).
    pub(crate) placeholder: fn(usize) -> String,
    /// The envelope's correlation id, and its tenant.
    pub(crate) correlation_id: &'static str,
    pub(crate) tenant_id: &'static str,
    /// The selected envelope, as text.
    pub(crate) envelope: &'static str,
    /// A time as the `appended_at` column holds it.
    pub(crate) time: fn(DateTime<Utc>) -> SqlValue,
    /// An id as the `id` column holds it.
    pub(crate) id: fn(Uuid) -> SqlValue,
}

#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
impl EventQuery {
    /// The statement selecting `(position, envelope)` of up to `fetch` rows of the page,
    /// with its parameters.
    pub(crate) fn to_sql(
        &self,
        dialect: &Dialect,
        cursor: Option<Position>,
        fetch: usize,
    ) -> (String, Vec<SqlValue>) {
        let mut w = Where {
            dialect,
            conditions: Vec::new(),
            values: Vec::new(),
        };
        let newest_first = self.order == TimelineOrder::NewestFirst;
        if let Some(position) = cursor {
            let sql = if newest_first {
                "position < ?"
            } else {
                "position > ?"
            };
            w.bind(
                sql,
                SqlValue::Int(i64::try_from(position).unwrap_or(i64::MAX)),
            );
        }
        if let Some(key) = &self.partition_key {
            w.bind("partition_key = ?", SqlValue::Text(key.clone()));
        }
        if let Some(id) = self.id {
            w.bind("id = ?", (dialect.id)(id));
        }
        if !self.event_types.is_empty() {
            let mut any = Vec::new();
            for event_type in &self.event_types {
                w.values.push(SqlValue::Text(event_type.clone()));
                any.push((dialect.placeholder)(w.values.len()));
            }
            w.conditions
                .push(format!("event_type IN ({})", any.join(", ")));
        }
        if let Some(id) = &self.correlation_id {
            w.bind(
                &format!("{} = ?", dialect.correlation_id),
                SqlValue::Text(id.clone()),
            );
        }
        if let Some(tenant) = &self.tenant_id {
            w.bind(
                &format!("{} = ?", dialect.tenant_id),
                SqlValue::Text(tenant.clone()),
            );
        }
        if let Some(from) = self.from {
            w.bind("appended_at >= ?", (dialect.time)(from));
        }
        if let Some(until) = self.until {
            w.bind("appended_at < ?", (dialect.time)(until));
        }
        let Where {
            conditions, values, ..
        } = w;
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let order = if newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT position, {} FROM event_store_events{filter} ORDER BY position {order} LIMIT {fetch}",
            dialect.envelope
        );
        (sql, values)
    }
}

/// The conditions of a search and the values they bind, numbered as they come.
struct Where<'d> {
    dialect: &'d Dialect,
    conditions: Vec<String>,
    values: Vec<SqlValue>,
}

impl Where<'_> {
    /// Adds `sql` with its one `?` bound to `value`.
    fn bind(&mut self, sql: &str, value: SqlValue) {
        self.values.push(value);
        let placeholder = (self.dialect.placeholder)(self.values.len());
        self.conditions.push(sql.replace('?', &placeholder));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NUMBERED: Dialect = Dialect {
        placeholder: |n| format!("${n}"),
        correlation_id: "envelope->>'correlation_id'",
        tenant_id: "envelope->'meta'->>'tenant_id'",
        envelope: "envelope::text",
        time: SqlValue::Time,
        id: SqlValue::Id,
    };

    #[test]
    fn every_filter_becomes_a_bound_condition() {
        let query = EventQuery::new()
            .partition_key("o-1")
            .event_types(["a.b", "c.d"])
            .correlation_id("r")
            .tenant("t")
            .newest_first();
        let (sql, values) = query.to_sql(&NUMBERED, Some(9), 11);
        assert_eq!(
            sql,
            "SELECT position, envelope::text FROM event_store_events WHERE position < $1 \
             AND partition_key = $2 AND event_type IN ($3, $4) \
             AND envelope->>'correlation_id' = $5 AND envelope->'meta'->>'tenant_id' = $6 \
             ORDER BY position DESC LIMIT 11"
        );
        assert_eq!(values.len(), 6);
        assert_eq!(values[0], SqlValue::Int(9));
    }

    #[test]
    fn no_filter_reads_everything_in_order() {
        let (sql, values) = EventQuery::new().to_sql(&NUMBERED, None, 3);
        assert_eq!(
            sql,
            "SELECT position, envelope::text FROM event_store_events ORDER BY position ASC LIMIT 3"
        );
        assert!(values.is_empty());
    }
}
