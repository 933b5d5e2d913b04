//! The timeline of one partition key (an aggregate, a customer, a conversation), page by page.

use super::{Position, StoreError, StoredEvent};

/// Which way a timeline runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimelineOrder {
    /// The first event first (the default).
    #[default]
    OldestFirst,
    /// The last event first.
    NewestFirst,
}

/// A query for one page of the events of a partition key (`meta.partition_key`), optionally
/// only those whose type starts with a prefix.
///
/// Pages are stable under concurrent appends: paging with `next_cursor` returns every event
/// that existed when paging began exactly once, in order. Oldest-first paging may also
/// return events appended meanwhile (at the end); newest-first never does.
///
/// ```
/// use event_core::store::{TimelineOrder, TimelineQuery};
///
/// let first = TimelineQuery::partition("o-1").type_prefix("order.").limit(20).newest_first();
/// assert_eq!(first.order, TimelineOrder::NewestFirst);
/// // With a page's `next_cursor`:
/// # let page_next_cursor = Some("c42".to_owned());
/// if let Some(cursor) = page_next_cursor {
///     let next = first.clone().cursor(cursor);
///     # assert_eq!(next.cursor.as_deref(), Some("c42"));
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimelineQuery {
    /// The partition key.
    pub partition_key: String,
    /// Only event types starting with this, like `order.` (include the dot to match whole
    /// segments: `order` also matches `orders.x`).
    pub type_prefix: Option<String>,
    /// Only events of this tenant (`meta.tenant_id`).
    pub tenant_id: Option<String>,
    /// Where the previous page ended: its `next_cursor`. None for the first page.
    pub cursor: Option<String>,
    /// At most this many events per page (default 100; at least 1, at most 10 000).
    pub limit: usize,
    /// Oldest or newest first.
    pub order: TimelineOrder,
}

impl TimelineQuery {
    /// The first page of the events of `partition_key`, oldest first, 100 per page.
    pub fn partition(partition_key: impl Into<String>) -> Self {
        TimelineQuery {
            partition_key: partition_key.into(),
            type_prefix: None,
            tenant_id: None,
            cursor: None,
            limit: 100,
            order: TimelineOrder::OldestFirst,
        }
    }

    /// Only events whose type starts with `prefix`.
    #[must_use]
    pub fn type_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.type_prefix = Some(prefix.into());
        self
    }

    /// Only events of tenant `tenant` (`meta.tenant_id`).
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant.into());
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

    /// The position the cursor continues from, for implementors of
    /// [`Store`](super::Store): events after it (oldest first) or before it (newest first).
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidCursor`] for a cursor no store produced.
    pub fn cursor_position(&self) -> Result<Option<Position>, StoreError> {
        parse_cursor(self.cursor.as_deref())
    }
}

/// The position a page's `next_cursor` (`c{position}`) continues from.
pub(crate) fn parse_cursor(cursor: Option<&str>) -> Result<Option<Position>, StoreError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    cursor
        .strip_prefix('c')
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<Position>().ok())
        // Positions are stored as SQL BIGINT.
        .filter(|position| i64::try_from(*position).is_ok())
        .map(Some)
        .ok_or_else(|| StoreError::InvalidCursor {
            cursor: cursor.to_owned(),
        })
}

/// One page of a timeline.
#[derive(Debug, Clone)]
pub struct TimelinePage {
    /// The events, in the query's order.
    pub events: Vec<StoredEvent>,
    /// Where the next page starts; None when this page is the last (at the time of the
    /// query).
    pub next_cursor: Option<String>,
}

impl TimelinePage {
    /// A page from the rows an implementor fetched: up to `limit + 1` events in the query's
    /// order, the extra one only telling that there is a next page.
    ///
    /// ```
    /// use event_core::store::TimelinePage;
    ///
    /// let page = TimelinePage::from_rows(Vec::new(), 10);
    /// assert!(page.events.is_empty() && page.next_cursor.is_none());
    /// ```
    pub fn from_rows(mut rows: Vec<StoredEvent>, limit: usize) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = match rows.last() {
            Some(last) if more => Some(format!("c{}", last.position)),
            _ => None,
        };
        TimelinePage {
            events: rows,
            next_cursor,
        }
    }
}
