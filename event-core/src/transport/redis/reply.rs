//! Stream entries out of raw replies (XRANGE, XREADGROUP), kept as bytes: an entry whose
//! fields are not what the toolkit wrote is dead-lettered, not a parse error.

use redis::Value;

/// A stream entry: its id and fields, `None` for an entry deleted while pending.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) id: String,
    pub(super) fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Entry {
    /// A field's value.
    pub(super) fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .as_ref()?
            .iter()
            .find(|(key, _)| key == name.as_bytes())
            .map(|(_, value)| value.as_slice())
    }

    /// A field as text (lossy).
    pub(super) fn text(&self, name: &str) -> Option<String> {
        self.field(name)
            .map(|value| String::from_utf8_lossy(value).into_owned())
    }
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        Value::Int(n) => Some(n.to_string().into_bytes()),
        _ => None,
    }
}

fn items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => Vec::new(),
    }
}

/// The entries of an XRANGE / XREVRANGE / XCLAIM reply.
pub(super) fn entries(value: Value) -> Vec<Entry> {
    items(value).into_iter().filter_map(entry).collect()
}

fn entry(value: Value) -> Option<Entry> {
    let mut parts = items(value).into_iter();
    let id = String::from_utf8(bytes(parts.next()?)?).ok()?;
    let fields = match parts.next() {
        None | Some(Value::Nil) => None,
        Some(fields) => {
            let mut flat = items(fields).into_iter();
            let mut pairs = Vec::new();
            while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
                pairs.push((
                    bytes(key).unwrap_or_default(),
                    bytes(value).unwrap_or_default(),
                ));
            }
            Some(pairs)
        }
    };
    Some(Entry { id, fields })
}

/// The entries per stream key of an XREAD / XREADGROUP reply (nil when nothing came).
pub(super) fn streams(value: Value) -> Vec<(String, Vec<Entry>)> {
    match value {
        Value::Map(pairs) => pairs
            .into_iter()
            .filter_map(|(key, value)| Some((String::from_utf8(bytes(key)?).ok()?, entries(value))))
            .collect(),
        value => items(value)
            .into_iter()
            .filter_map(|stream| {
                let mut parts = items(stream).into_iter();
                let key = String::from_utf8(bytes(parts.next()?)?).ok()?;
                Some((key, parts.next().map(entries).unwrap_or_default()))
            })
            .collect(),
    }
}

/// What the fenced read script (`scripts::READ`) answered.
pub(super) struct FencedRead {
    /// The entries per stream read.
    pub(super) read: Vec<(String, Vec<Entry>)>,
    /// When none came, the last entry id of each stream, to wait after.
    pub(super) last: Vec<(String, String)>,
}

/// The reply of the fenced read script.
pub(super) fn fenced_read(value: Value) -> FencedRead {
    let mut parts = items(value).into_iter();
    let read = parts.next().map(streams).unwrap_or_default();
    let mut flat = parts.next().map(items).unwrap_or_default().into_iter();
    let mut last = Vec::new();
    while let (Some(key), Some(id)) = (flat.next(), flat.next()) {
        let text = |value| bytes(value).and_then(|b| String::from_utf8(b).ok());
        if let (Some(key), Some(id)) = (text(key), text(id)) {
            last.push((key, id));
        }
    }
    FencedRead { read, last }
}
