//! A subscription's handler as the lanes call it: typed (a union's envelope, its payload
//! cloned from a typed event or decoded from JSON) or raw (the event's JSON). Generic, so a
//! delivery calls the user's handler directly: no boxed future, no dynamic call.

use super::error::HandlerError;
use super::published::{self, Event};
use crate::envelope::{Envelope, RawEnvelope};
use crate::union::EventUnion;
use futures_util::future::{Either, ready};
use std::future::Future;
use std::marker::PhantomData;

/// What a lane calls for each delivery.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Whether it takes batches: what it publishes then carries no ids of the events.
    const BATCH: bool = false;

    /// One call on `event`.
    fn call(
        &self,
        event: &Event,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'static;
}

/// A handler of the union `U`'s envelopes.
pub(crate) struct Typed<U, F> {
    handler: F,
    union: PhantomData<fn() -> U>,
}

impl<U, F> Typed<U, F> {
    pub(crate) fn new(handler: F) -> Self {
        Typed {
            handler,
            union: PhantomData,
        }
    }
}

impl<U, F, Fut> Handler for Typed<U, F>
where
    U: EventUnion,
    F: Fn(Envelope<U>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn call(
        &self,
        event: &Event,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'static {
        match published::decode::<U>(&**event) {
            Ok(envelope) => Either::Left((self.handler)(envelope)),
            Err(error) => Either::Right(ready(Err(HandlerError::undecodable(error)))),
        }
    }
}

/// A handler of raw envelopes: the payload as JSON.
pub(crate) struct Raw<F>(pub(crate) F);

impl<F, Fut> Handler for Raw<F>
where
    F: Fn(RawEnvelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn call(
        &self,
        event: &Event,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'static {
        match event.raw() {
            Ok(raw) => Either::Left((self.0)((**raw).clone())),
            Err(error) => Either::Right(ready(Err(HandlerError::permanent(format!(
                "event payload does not serialize: {error}"
            ))))),
        }
    }
}

/// A handler that takes several events in one call: what a batch subscription's lanes call.
pub(crate) trait BatchHandler: Handler {
    /// One call on `events`, in order.
    fn call_many(
        &self,
        events: &[Event],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'static;
}

/// A handler of batches of the union `U`'s envelopes. Called alone, an event is a batch
/// of one.
pub(crate) struct Batch<U, F> {
    handler: F,
    union: PhantomData<fn() -> U>,
}

impl<U, F> Batch<U, F> {
    pub(crate) fn new(handler: F) -> Self {
        Batch {
            handler,
            union: PhantomData,
        }
    }
}

impl<U, F, Fut> Handler for Batch<U, F>
where
    U: EventUnion,
    F: Fn(Vec<Envelope<U>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    const BATCH: bool = true;

    fn call(
        &self,
        event: &Event,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'static {
        self.call_many(std::slice::from_ref(event))
    }
}

impl<U, F, Fut> BatchHandler for Batch<U, F>
where
    U: EventUnion,
    F: Fn(Vec<Envelope<U>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn call_many(
        &self,
        events: &[Event],
    ) -> impl Future<Output = Result<(), HandlerError>> + Send + 'static {
        // One event that does not decode fails the batch for good; the lane then hands
        // the events over one at a time, so that only that one is dead-lettered.
        let decoded: Result<Vec<_>, _> = events
            .iter()
            .map(|event| published::decode::<U>(&**event))
            .collect();
        match decoded {
            Ok(envelopes) => Either::Left((self.handler)(envelopes)),
            Err(error) => Either::Right(ready(Err(HandlerError::undecodable(error)))),
        }
    }
}
