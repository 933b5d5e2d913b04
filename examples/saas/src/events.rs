//! The platform's event catalog, one stream per context on Redis (`user`, `file`,
//! `embedding`, `notification`, `system`), as in the design doc of "The Collective
//! Strategist".
//!
//! | type | purpose | source | partitioned by |
//! |---|---|---|---|
//! | `user.registered` | a user signed up | `auth-service` | `user_id` |
//! | `file.uploaded` | a file reached storage | `upload-service` | `file_id` |
//! | `file.processing.started` | text extraction began | `file-processor` | `file_id` |
//! | `file.processing.completed` | text extraction ended | `file-processor` | `file_id` |
//! | `embedding.generation.requested` | vectors wanted for a text | `knowledge-service` | `request_id` |
//! | `embedding.generation.completed` | vectors stored | `embedder` | `request_id` |
//! | `notification.send.requested` | tell a user something | `notification-service` | `user_id` |
//! | `notification.delivered` | a channel delivered it | `notifier` | `user_id` |
//! | `system.error.critical` | a service hit an error an operator must see | any | `service_name` |

use event_core::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A user signed up; onboarding welcomes them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "user.registered", version = 1, source = "auth-service")]
pub struct UserRegistered {
    /// The new user's id.
    #[event(partition_key)]
    pub user_id: String,
    /// Where to reach them.
    #[event(pii)]
    pub email: String,
    /// The plan they signed up for: `free`, `pro` or `team`.
    pub tier: String,
    /// How they found the platform, like `newsletter`.
    pub referral_source: Option<String>,
}

/// A file reached storage; the file processor extracts its text.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "file.uploaded", version = 1, source = "upload-service")]
pub struct FileUploaded {
    /// The file's id.
    #[event(partition_key)]
    pub file_id: String,
    /// Its owner.
    pub user_id: String,
    /// Its name as uploaded.
    pub filename: String,
    /// Its size; 0 is a broken upload.
    pub size_bytes: u64,
}

/// The file processor began extracting a file's text.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "file.processing.started",
    version = 1,
    source = "file-processor"
)]
pub struct FileProcessingStarted {
    /// The file's id.
    #[event(partition_key)]
    pub file_id: String,
    /// What is done to it, like `pdf-text` or `plain-text`.
    pub processing_type: String,
}

/// The file processor is done with a file: its text, or why there is none.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "file.processing.completed",
    version = 1,
    source = "file-processor"
)]
pub struct FileProcessingCompleted {
    /// The file's id.
    #[event(partition_key)]
    pub file_id: String,
    /// The text found in it.
    pub extracted_text: String,
    /// Whether the extraction succeeded.
    pub success: bool,
}

/// Vectors are wanted for a text (a processed file's, here).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "embedding.generation.requested",
    version = 1,
    source = "knowledge-service"
)]
pub struct EmbeddingGenerationRequested {
    /// The request's id, echoed by the reply.
    #[event(partition_key)]
    pub request_id: String,
    /// Whose knowledge base the vectors go to.
    pub user_id: String,
    /// The text to embed.
    pub text_content: String,
    /// `high` jumps the queue of a real embedder; here it is only shown.
    pub priority: String,
}

/// The embedder stored the vectors of a request.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "embedding.generation.completed",
    version = 1,
    source = "embedder"
)]
pub struct EmbeddingGenerationCompleted {
    /// The request answered.
    #[event(partition_key)]
    pub request_id: String,
    /// Where the vectors are stored.
    pub embedding_id: String,
    /// How many dimensions each vector has.
    pub dimensions: u32,
}

/// Tell a user something, on some channels.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(
    name = "notification.send.requested",
    version = 1,
    source = "notification-service"
)]
pub struct NotificationSendRequested {
    /// Who to tell.
    #[event(partition_key)]
    pub user_id: String,
    /// What kind of message, like `welcome` or `file-ready`.
    pub notification_type: String,
    /// Where to send it: `email`, `in-app`, `push`.
    pub channels: Vec<String>,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
}

/// A channel delivered a notification (one event per channel).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "notification.delivered", version = 1, source = "notifier")]
pub struct NotificationDelivered {
    /// Who was told.
    #[event(partition_key)]
    pub user_id: String,
    /// Through which channel.
    pub channel: String,
}

/// A service hit an error an operator must look at.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, DomainEvent)]
#[event(name = "system.error.critical", version = 1, source = "platform")]
pub struct SystemErrorCritical {
    /// The service that failed.
    #[event(partition_key)]
    pub service_name: String,
    /// A short kind, like `empty-upload`.
    pub error_type: String,
    /// What happened.
    pub error_message: String,
}
