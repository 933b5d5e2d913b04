//! The gateway: what the platform's API does for its users. It registers them, then runs,
//! per uploaded file, the saga that waits for each step before starting the next:
//!
//! 1. publish `file.uploaded` under the saga's correlation id, wait for
//!    `file.processing.completed` (or `system.error.critical`: the upload is rejected);
//! 2. publish `embedding.generation.requested`, wait for `embedding.generation.completed`;
//! 3. publish `notification.send.requested`, wait for `notification.delivered`.
//!
//! The replies come from whichever worker handled the request, in any process: `wait_for`
//! finds them by correlation id.

use crate::events::{
    EmbeddingGenerationCompleted, EmbeddingGenerationRequested, FileProcessingCompleted,
    FileUploaded, NotificationDelivered, NotificationSendRequested, SystemErrorCritical,
    UserRegistered,
};
use crate::log::Log;
use crate::scenario::{
    BAD_UPLOAD, SIGNUPS, Signup, UPLOADS, Upload, signup_correlation_id, upload_correlation_id,
};
use event_core::{EventBus, PublishContext, PublishError, WaitError};
use std::fmt;
use std::time::{Duration, Instant};

/// How a saga ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step answered.
    Completed,
    /// A worker refused the request for good, saying why.
    Rejected(String),
    /// A step failed or did not answer in time.
    Failed(String),
}

/// One saga: a sign-up's welcome, or an upload's processing.
#[derive(Debug, Clone)]
pub struct Saga {
    /// `signup u-1` or `upload f-3`.
    pub name: String,
    /// Its correlation id.
    pub correlation_id: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub took: Duration,
}

impl Saga {
    /// Whether it ended as the scenario expects: rejected for the bad upload, completed for
    /// everything else.
    pub fn as_expected(&self) -> bool {
        if self.name == format!("upload {BAD_UPLOAD}") {
            matches!(self.outcome, Outcome::Rejected(_))
        } else {
            self.outcome == Outcome::Completed
        }
    }
}

/// Every saga the gateway ran.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The sagas, in the order they ran.
    pub sagas: Vec<Saga>,
}

impl Report {
    /// The sagas that did not end as expected (see [`Saga::as_expected`]).
    pub fn unexpected(&self) -> Vec<&Saga> {
        self.sagas
            .iter()
            .filter(|saga| !saga.as_expected())
            .collect()
    }

    /// Prints one line per saga.
    pub fn print(&self, log: &Log) {
        log.line("summary:");
        for saga in &self.sagas {
            let verdict = if saga.as_expected() { "ok " } else { "BAD" };
            let outcome = match &saga.outcome {
                Outcome::Completed => "completed".to_owned(),
                Outcome::Rejected(why) => format!("rejected: {why}"),
                Outcome::Failed(why) => format!("FAILED: {why}"),
            };
            log.line(format_args!(
                "  {verdict} {:<12} {outcome} ({} ms)",
                saga.name,
                saga.took.as_millis()
            ));
        }
    }
}

/// Why a saga's step failed.
#[derive(Debug)]
enum StepError {
    Publish(PublishError),
    Wait(WaitError),
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Publish(error) => write!(f, "publish failed: {error}"),
            StepError::Wait(error) => write!(f, "{error}"),
        }
    }
}

impl From<PublishError> for StepError {
    fn from(error: PublishError) -> Self {
        StepError::Publish(error)
    }
}

impl From<WaitError> for StepError {
    fn from(error: WaitError) -> Self {
        StepError::Wait(error)
    }
}

/// Registers the users, then runs the upload sagas one after another; each step waits at
/// most `step_timeout` for its reply.
pub async fn run(bus: &EventBus, log: &Log, step_timeout: Duration) -> Report {
    let mut report = Report::default();
    for signup in SIGNUPS {
        let started = Instant::now();
        let outcome = match register(bus, log, &signup, step_timeout).await {
            Ok(()) => Outcome::Completed,
            Err(error) => Outcome::Failed(error.to_string()),
        };
        report.sagas.push(Saga {
            name: format!("signup {}", signup.user_id),
            correlation_id: signup_correlation_id(signup.user_id),
            outcome,
            took: started.elapsed(),
        });
    }
    for upload in UPLOADS {
        let started = Instant::now();
        let outcome = match process_upload(bus, log, &upload, step_timeout).await {
            Ok(outcome) => outcome,
            Err(error) => {
                log.line(format_args!("{}: FAILED: {error}", upload.file_id));
                Outcome::Failed(error.to_string())
            }
        };
        report.sagas.push(Saga {
            name: format!("upload {}", upload.file_id),
            correlation_id: upload_correlation_id(upload.file_id),
            outcome,
            took: started.elapsed(),
        });
    }
    report
}

/// Registers a user and waits for the welcome to be delivered.
async fn register(
    bus: &EventBus,
    log: &Log,
    signup: &Signup,
    timeout: Duration,
) -> Result<(), StepError> {
    let user_id = signup.user_id;
    let cid = signup_correlation_id(user_id);
    bus.publish_with(
        PublishContext::new().correlation_id(&cid),
        UserRegistered {
            user_id: signup.user_id.to_owned(),
            email: signup.email.to_owned(),
            tier: signup.tier.to_owned(),
            referral_source: signup.referral_source.map(str::to_owned),
        },
    )
    .await?;
    log.line(format_args!(
        "{user_id}: user.registered ({} tier, via {})",
        signup.tier,
        signup.referral_source.unwrap_or("direct")
    ));
    let welcome = bus.wait_for::<NotificationDelivered>(&cid, timeout).await?;
    log.line(format_args!(
        "{user_id}: welcome delivered by {}",
        welcome.payload.channel
    ));
    Ok(())
}

/// The saga of one upload.
async fn process_upload(
    bus: &EventBus,
    log: &Log,
    upload: &Upload,
    timeout: Duration,
) -> Result<Outcome, StepError> {
    let id = upload.file_id;
    let cid = upload_correlation_id(id);
    let context = || PublishContext::new().correlation_id(&cid);

    bus.publish_with(
        context(),
        FileUploaded {
            file_id: id.to_owned(),
            user_id: upload.user_id.to_owned(),
            filename: upload.filename.to_owned(),
            size_bytes: upload.size_bytes,
        },
    )
    .await?;
    log.line(format_args!(
        "{id}: file.uploaded {} ({} bytes), correlation id {cid}",
        upload.filename, upload.size_bytes
    ));
    // Either the text, or the processor's alarm about this very upload.
    let processed = tokio::select! {
        biased;
        done = bus.wait_for::<FileProcessingCompleted>(&cid, timeout) => done?,
        alarm = bus.wait_for::<SystemErrorCritical>(&cid, timeout) => {
            let alarm = alarm?.payload;
            log.line(format_args!(
                "{id}: rejected by {}: {} ({})",
                alarm.service_name, alarm.error_message, alarm.error_type
            ));
            return Ok(Outcome::Rejected(alarm.error_message));
        }
    };
    log.line(format_args!(
        "{id}: step 1/3 file.processing.completed, {} chars of text",
        processed.payload.extracted_text.len()
    ));

    bus.publish_with(
        context(),
        EmbeddingGenerationRequested {
            request_id: format!("emb-{id}"),
            user_id: upload.user_id.to_owned(),
            text_content: processed.payload.extracted_text,
            priority: if upload.size_bytes > 1_000_000 {
                "low"
            } else {
                "normal"
            }
            .to_owned(),
        },
    )
    .await?;
    let embedded = bus
        .wait_for::<EmbeddingGenerationCompleted>(&cid, timeout)
        .await?;
    log.line(format_args!(
        "{id}: step 2/3 embedding.generation.completed, {} ({} dimensions)",
        embedded.payload.embedding_id, embedded.payload.dimensions
    ));

    bus.publish_with(
        context(),
        NotificationSendRequested {
            user_id: upload.user_id.to_owned(),
            notification_type: "file-ready".to_owned(),
            channels: vec!["in-app".to_owned()],
            title: format!("{} is ready", upload.filename),
            body: "Its text is in your knowledge base.".to_owned(),
        },
    )
    .await?;
    let delivered = bus.wait_for::<NotificationDelivered>(&cid, timeout).await?;
    log.line(format_args!(
        "{id}: step 3/3 notification.delivered to {} by {}: saga completed",
        delivered.payload.user_id, delivered.payload.channel
    ));
    Ok(Outcome::Completed)
}
