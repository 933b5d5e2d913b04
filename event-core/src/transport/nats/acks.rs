//! Acknowledgements, coalesced per shard consumer: those that arrive while another flush of
//! the same consumer is under way wait for it, then go out together as plain `+ACK`s
//! followed by one request, whose answer confirms them all. The server handles one
//! connection's messages in order: an answer means the consumer was there for every one of
//! them; "no responders" means a new owner deleted it, and the whole flush is refused.

use super::Inner;
use crate::transport::{EntryRef, TransportError};
use async_nats::Subject;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

/// Which consumer an acknowledgement goes to: topic, shard, token.
type Consumer = (String, u32, u64);

/// Outcome of a flush, shared by the acknowledgements it carried.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Confirmed,
    /// No consumer answered: a new owner deleted it.
    Refused,
    /// The server did not answer in time, or the connection is down.
    Unavailable,
}

#[derive(Default)]
struct Queue {
    /// Waiting for the next flush: the subject, and who to tell.
    waiting: Vec<(Subject, oneshot::Sender<Outcome>)>,
    /// A flush is under way (its flusher takes the waiting ones next).
    flushing: bool,
}

/// The member's acknowledgement queues, one per consumer.
#[derive(Default)]
pub(super) struct Acks {
    queues: Mutex<HashMap<Consumer, Queue>>,
}

impl std::fmt::Debug for Acks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acks").finish_non_exhaustive()
    }
}

impl Acks {
    /// Acknowledges `reply` (the subject of `entry`'s delivery), and waits until a flush
    /// confirmed or refused it.
    pub(super) async fn ack(
        self: &Arc<Self>,
        inner: &Inner,
        entry: &EntryRef,
        reply: Subject,
    ) -> Result<(), TransportError> {
        let consumer = (entry.topic.clone(), entry.shard, entry.token);
        let (tx, rx) = oneshot::channel();
        let flusher = {
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            let queue = queues.entry(consumer.clone()).or_default();
            queue.waiting.push((reply, tx));
            !std::mem::replace(&mut queue.flushing, true)
        };
        if flusher {
            self.flush(inner, &consumer).await;
        }
        match rx.await.unwrap_or(Outcome::Unavailable) {
            Outcome::Confirmed => Ok(()),
            Outcome::Refused => {
                tracing::debug!(topic = %entry.topic, shard = entry.shard, token = entry.token, "acknowledgement refused: the consumer is gone");
                Err(inner.fenced(entry))
            }
            Outcome::Unavailable => Err(TransportError::Unavailable {
                broker: inner.broker.clone(),
                source: Arc::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the acknowledgement was not confirmed",
                )),
            }),
        }
    }

    /// Sends what waits for `consumer`, batch after batch, until nothing does.
    async fn flush(&self, inner: &Inner, consumer: &Consumer) {
        loop {
            let batch = {
                let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(queue) = queues.get_mut(consumer) else {
                    return;
                };
                if queue.waiting.is_empty() {
                    queues.remove(consumer);
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let outcome = send(inner, &batch).await;
            for (_, tx) in batch {
                let _ = tx.send(outcome);
            }
        }
    }
}

/// Plain acknowledgements for all but the last, then the last as a request.
async fn send(inner: &Inner, batch: &[(Subject, oneshot::Sender<Outcome>)]) -> Outcome {
    let Some(((last, _), rest)) = batch.split_last() else {
        return Outcome::Confirmed;
    };
    for (reply, _) in rest {
        if inner
            .client
            .publish(reply.clone(), "+ACK".into())
            .await
            .is_err()
        {
            return Outcome::Unavailable;
        }
    }
    match inner.client.request(last.clone(), "+ACK".into()).await {
        Ok(_) => Outcome::Confirmed,
        Err(error) if error.kind() == async_nats::RequestErrorKind::NoResponders => {
            Outcome::Refused
        }
        Err(_) => Outcome::Unavailable,
    }
}
