//! Onboarding: welcomes each new user with a notification.

use crate::events::{NotificationSendRequested, UserRegistered};
use crate::log::Log;
use event_core::{EventBus, HandlerError, SubscribeError};

/// The consumer group.
pub const GROUP: &str = "onboarding";

/// Subscribes the role on `bus`.
///
/// # Errors
///
/// [`SubscribeError`] when the group is subscribed already or the bus is shut down.
pub fn subscribe(bus: &EventBus, log: &Log) -> Result<(), SubscribeError> {
    let publisher = bus.clone();
    let log = log.clone();
    bus.subscribe_with::<UserRegistered, _, _>(GROUP, &super::options(), move |env| {
        log.handled(GROUP, &env);
        let bus = publisher.clone();
        async move { welcome(&bus, env.payload).await }
    })
}

/// Asks the notifier to welcome `user`: by email, and in the app for paying tiers.
async fn welcome(bus: &EventBus, user: UserRegistered) -> Result<(), HandlerError> {
    let mut channels = vec!["email".to_owned()];
    if user.tier != "free" {
        channels.push("in-app".to_owned());
    }
    bus.publish(NotificationSendRequested {
        user_id: user.user_id,
        notification_type: "welcome".to_owned(),
        channels,
        title: "Welcome to The Collective Strategist".to_owned(),
        body: format!("Your {} plan is ready.", user.tier),
    })
    .await
    .map_err(super::retry)?;
    Ok(())
}
