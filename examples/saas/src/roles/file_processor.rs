//! The file processor: extracts the text of each uploaded file. An empty upload is a
//! permanent failure: it raises `system.error.critical` and goes to the dead letters, where
//! an operator finds it.

use crate::events::{
    FileProcessingCompleted, FileProcessingStarted, FileUploaded, SystemErrorCritical,
};
use crate::log::Log;
use event_core::{EventBus, HandlerError, SubscribeError};
use std::time::Duration;

/// The consumer group.
pub const GROUP: &str = "file-processor";

/// How long extracting a file's text takes here.
const WORK: Duration = Duration::from_millis(40);

/// Subscribes the role on `bus`.
///
/// # Errors
///
/// [`SubscribeError`] when the group is subscribed already or the bus is shut down.
pub fn subscribe(bus: &EventBus, log: &Log) -> Result<(), SubscribeError> {
    let publisher = bus.clone();
    let log = log.clone();
    bus.subscribe_with::<FileUploaded, _, _>(GROUP, &super::options(), move |env| {
        log.handled(GROUP, &env);
        let bus = publisher.clone();
        async move { process(&bus, env.payload).await }
    })
}

/// Extracts `file`'s text, announcing the start and the result.
async fn process(bus: &EventBus, file: FileUploaded) -> Result<(), HandlerError> {
    if file.size_bytes == 0 {
        let message = format!(
            "{} ({}) is empty: nothing to extract",
            file.file_id, file.filename
        );
        bus.publish(SystemErrorCritical {
            service_name: GROUP.to_owned(),
            error_type: "empty-upload".to_owned(),
            error_message: message.clone(),
        })
        .await
        .map_err(super::retry)?;
        return Err(HandlerError::permanent(message));
    }
    bus.publish(FileProcessingStarted {
        file_id: file.file_id.clone(),
        processing_type: processing_type(&file.filename).to_owned(),
    })
    .await
    .map_err(super::retry)?;
    tokio::time::sleep(WORK).await;
    bus.publish(FileProcessingCompleted {
        extracted_text: format!(
            "the text of {} ({} bytes): strategy notes, goals, quarterly plan",
            file.filename, file.size_bytes
        ),
        file_id: file.file_id,
        success: true,
    })
    .await
    .map_err(super::retry)?;
    Ok(())
}

/// How a file is read, by its extension.
fn processing_type(filename: &str) -> &'static str {
    match filename.rsplit_once('.').map(|(_, ext)| ext) {
        Some("pdf") => "pdf-text",
        Some("docx") => "docx-text",
        _ => "plain-text",
    }
}
