//! The notifier: delivers a notification on each of its channels.

use crate::events::{NotificationDelivered, NotificationSendRequested};
use crate::log::Log;
use event_core::{EventBus, HandlerError, SubscribeError};

/// The consumer group.
pub const GROUP: &str = "notifier";

/// Subscribes the role on `bus`.
///
/// # Errors
///
/// [`SubscribeError`] when the group is subscribed already or the bus is shut down.
pub fn subscribe(bus: &EventBus, log: &Log) -> Result<(), SubscribeError> {
    let publisher = bus.clone();
    let log = log.clone();
    bus.subscribe_with::<NotificationSendRequested, _, _>(GROUP, &super::options(), move |env| {
        log.handled(GROUP, &env);
        let bus = publisher.clone();
        async move { deliver(&bus, env.payload).await }
    })
}

/// Sends the notification on every channel (pretend), one `notification.delivered` each.
async fn deliver(bus: &EventBus, request: NotificationSendRequested) -> Result<(), HandlerError> {
    for channel in request.channels {
        bus.publish(NotificationDelivered {
            user_id: request.user_id.clone(),
            channel,
        })
        .await
        .map_err(super::retry)?;
    }
    Ok(())
}
