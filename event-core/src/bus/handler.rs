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
