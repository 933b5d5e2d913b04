//! What [`Transport::info`](super::Transport::info) reports.

use serde::Serialize;

/// A transport's state: its topics, their shards and consumer groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct TransportInfo {
    /// The broker, without credentials.
    pub broker: String,
    /// The prefix under which the toolkit keeps everything on the broker.
    pub prefix: String,
    /// Shards per topic.
    pub shards: u32,
    /// Every topic, by name.
    pub topics: Vec<TopicInfo>,
}

/// One topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct TopicInfo {
    /// Its name.
    pub topic: String,
    /// Its shards, by number.
    pub shards: Vec<ShardInfo>,
    /// The consumer groups that read it.
    pub groups: Vec<GroupInfo>,
    /// Entries in its dead-letter stream.
    pub dead_letters: u64,
}

/// One shard of a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct ShardInfo {
    /// Its number.
    pub shard: u32,
    /// Entries kept.
    pub length: u64,
    /// The id of the first entry kept.
    pub first: Option<String>,
    /// The id of the last entry.
    pub last: Option<String>,
}

/// A consumer group's state on one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct GroupInfo {
    /// Its name (the subscription's).
    pub group: String,
    /// Its members.
    pub consumers: Vec<ConsumerInfo>,
    /// Entries handed out and not yet acknowledged, over every shard.
    pub pending: u64,
    /// Entries not yet handed out, over every shard (`None` where the broker cannot tell).
    pub lag: Option<u64>,
}

/// A member of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct ConsumerInfo {
    /// Its name.
    pub name: String,
    /// Entries it holds unacknowledged.
    pub pending: u64,
    /// The shards whose lease it holds.
    pub shards: Vec<u32>,
}
