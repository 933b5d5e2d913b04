//! The embedder: turns a text into vectors and says where they are stored.

use crate::events::{EmbeddingGenerationCompleted, EmbeddingGenerationRequested};
use crate::log::Log;
use event_core::{EventBus, HandlerError, SubscribeError};
use std::time::Duration;

/// The consumer group.
pub const GROUP: &str = "embedder";

/// The model's vector size.
const DIMENSIONS: u32 = 1536;

/// How long a request takes here.
const WORK: Duration = Duration::from_millis(30);

/// Subscribes the role on `bus`.
///
/// # Errors
///
/// [`SubscribeError`] when the group is subscribed already or the bus is shut down.
pub fn subscribe(bus: &EventBus, log: &Log) -> Result<(), SubscribeError> {
    let publisher = bus.clone();
    let log = log.clone();
    bus.subscribe_with::<EmbeddingGenerationRequested, _, _>(GROUP, &super::options(), move |env| {
        log.handled(GROUP, &env);
        let bus = publisher.clone();
        async move { embed(&bus, env.payload).await }
    })
}

/// Embeds the request's text (pretend), and replies.
async fn embed(bus: &EventBus, request: EmbeddingGenerationRequested) -> Result<(), HandlerError> {
    tokio::time::sleep(WORK).await;
    bus.publish(EmbeddingGenerationCompleted {
        embedding_id: format!("vec-{}", request.request_id),
        request_id: request.request_id,
        dimensions: DIMENSIONS,
    })
    .await
    .map_err(super::retry)?;
    Ok(())
}
