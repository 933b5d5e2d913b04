//! `LISTEN` for appends committed by other processes (each appending transaction sends a
//! `NOTIFY` at its commit): one connection per bus, opened again when it drops, ended once
//! the bus is gone.

use super::queries::APPENDED_CHANNEL;
use crate::transport::reconnect_delay;
use futures_util::StreamExt;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, Config, NoTls};

/// The longest wait between two attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How often an idle listener checks that its bus still lives.
const ALIVE_CHECK: Duration = Duration::from_secs(2);

/// Listens until `wake` has no owner left, waking it for each notification, and once after
/// each (re)connection: what was committed while nobody listened is read then.
pub(super) async fn run(config: Config, database: Arc<str>, wake: Weak<Notify>) {
    let mut failures = 0;
    loop {
        match listen(&config, &wake, &mut failures).await {
            Ok(()) => return,
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(%error, %database, "not listening for appends; polling until listening works again");
                }
                tokio::time::sleep(reconnect_delay(failures, MAX_BACKOFF)).await;
            }
        }
        if wake.strong_count() == 0 {
            return;
        }
    }
}

/// One connection's life: `Ok` when the bus is gone, `Err` when the connection failed.
async fn listen(config: &Config, wake: &Weak<Notify>, failures: &mut u32) -> Result<(), String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {APPENDED_CHANNEL}");
    let listening = client.batch_execute(&statement);
    tokio::pin!(listening);
    // The connection is driven (its messages read) while the LISTEN runs.
    loop {
        tokio::select! {
            done = &mut listening => {
                done.map_err(|e| e.to_string())?;
                break;
            }
            message = messages.next() => match message {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error.to_string()),
                None => return Err("connection closed".to_owned()),
            },
        }
    }
    if *failures > 0 {
        tracing::info!("listening for appends again");
        *failures = 0;
    }
    let Some(notify) = wake.upgrade() else {
        return Ok(());
    };
    notify.notify_waiters();
    drop(notify);
    loop {
        match tokio::time::timeout(ALIVE_CHECK, messages.next()).await {
            Err(_) if wake.strong_count() == 0 => return Ok(()),
            Ok(Some(Ok(AsyncMessage::Notification(_)))) => match wake.upgrade() {
                Some(notify) => notify.notify_waiters(),
                None => return Ok(()),
            },
            // Idle, or a notice.
            Err(_) | Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => return Err(error.to_string()),
            Ok(None) => return Err("connection closed".to_owned()),
        }
    }
}
