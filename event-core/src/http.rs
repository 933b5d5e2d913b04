//! HTTP requests as the context of the events they publish (feature `http`).
//!
//! [`RequestContextLayer`] is a tower layer: put it on an axum router (or any tower-based
//! server) and each request's handler runs inside a [`PublishContext::scope`] built from the
//! request's headers, so every event published while serving the request carries its
//! correlation id, trace id and tenant, with no code in the handler:
//!
//! - the correlation id: the configured header (`x-correlation-id` by default), else
//!   `x-request-id`, else a new UUID v7; echoed in the response under the configured header;
//! - the trace id: a valid W3C `traceparent`, whole (as the feature `opentelemetry` stores
//!   it); a malformed one is ignored;
//! - the tenant: the configured header (`x-tenant-id` by default);
//! - the source, when the layer is given one.
//!
//! A header value that is empty, longer than 128 bytes or not visible ASCII is ignored (a
//! correlation id is generated in its place). The scope follows the rules of
//! [`PublishContext::scope`]: a `publish_with` context wins over it, a subscription
//! handler's follow-ups keep the handled event's chain, and a task spawned by the request
//! handler does not inherit it.
//!
//! ```
//! use event_core::PublishContext;
//! use event_core::http::RequestContextLayer;
//! use http::{Request, Response};
//! use std::convert::Infallible;
//! use std::pin::Pin;
//! use std::task::{Context, Poll};
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! type Answer = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;
//!
//! /// Answers with the correlation id its events would carry.
//! #[derive(Clone)]
//! struct Echo;
//!
//! impl Service<Request<()>> for Echo {
//!     type Response = Response<String>;
//!     type Error = Infallible;
//!     type Future = Answer;
//!
//!     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
//!         Poll::Ready(Ok(()))
//!     }
//!
//!     fn call(&mut self, _: Request<()>) -> Answer {
//!         // The scope covers the returned future (an axum handler's body), not `call`.
//!         Box::pin(async {
//!             let context = PublishContext::current().unwrap_or_default();
//!             let id = context.get_correlation_id().unwrap_or_default();
//!             Ok(Response::new(id.to_owned()))
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // With axum: `Router::new().route(...).layer(RequestContextLayer::new())`.
//! let mut service = RequestContextLayer::new().layer(Echo);
//! let request = Request::builder()
//!     .header("x-correlation-id", "c-42")
//!     .body(())
//!     .unwrap();
//! let response = service.call(request).await.unwrap();
//! assert_eq!(response.headers()["x-correlation-id"], "c-42");
//! assert_eq!(response.body(), "c-42");
//! # }
//! ```

use crate::PublishContext;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response};
use pin_project_lite::pin_project;
use smol_str::SmolStr;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::task::futures::TaskLocalFuture;
use tower_layer::Layer;
use tower_service::Service;

/// The longest header value taken as an id or a tenant, in bytes.
const MAX_VALUE_LEN: usize = 128;

/// The default correlation header.
const CORRELATION: HeaderName = HeaderName::from_static("x-correlation-id");

/// The fallback correlation header, read when the configured one is absent or unusable.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The default tenant header.
const TENANT: HeaderName = HeaderName::from_static("x-tenant-id");

/// The W3C trace context header.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// A tower layer giving every event published while serving an HTTP request the request's
/// context; see the [module](self).
///
/// ```
/// use event_core::http::RequestContextLayer;
/// use http::HeaderName;
///
/// let layer = RequestContextLayer::new()
///     .correlation_header(HeaderName::from_static("x-trace-token"))
///     .tenant_header(HeaderName::from_static("x-org"))
///     .source("checkout-api");
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct RequestContextLayer {
    correlation_header: HeaderName,
    tenant_header: HeaderName,
    source: Option<SmolStr>,
}

impl Default for RequestContextLayer {
    fn default() -> Self {
        RequestContextLayer::new()
    }
}

impl RequestContextLayer {
    /// The layer with its defaults: correlation id from `x-correlation-id` (else
    /// `x-request-id`), tenant from `x-tenant-id`, no source.
    ///
    /// ```
    /// let layer = event_core::http::RequestContextLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        RequestContextLayer {
            correlation_header: CORRELATION,
            tenant_header: TENANT,
            source: None,
        }
    }

    /// The header the correlation id is read from and echoed in (`x-correlation-id` by
    /// default). `x-request-id` stays the fallback when it is absent or unusable.
    ///
    /// ```
    /// use event_core::http::RequestContextLayer;
    ///
    /// let layer = RequestContextLayer::new()
    ///     .correlation_header(http::HeaderName::from_static("x-trace-token"));
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn correlation_header(mut self, name: HeaderName) -> Self {
        self.correlation_header = name;
        self
    }

    /// The header the tenant is read from (`x-tenant-id` by default), stored in
    /// `meta.tenant_id`.
    ///
    /// ```
    /// use event_core::http::RequestContextLayer;
    ///
    /// let layer = RequestContextLayer::new().tenant_header(http::HeaderName::from_static("x-org"));
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn tenant_header(mut self, name: HeaderName) -> Self {
        self.tenant_header = name;
        self
    }

    /// The source of the events published while serving a request, in place of each
    /// event's declared one (unless a `publish_with` context names its own).
    ///
    /// ```
    /// let layer = event_core::http::RequestContextLayer::new().source("checkout-api");
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn source(mut self, name: impl AsRef<str>) -> Self {
        self.source = Some(name.as_ref().into());
        self
    }

    /// The context of a request with `headers`, and the correlation id to echo.
    fn context(&self, headers: &HeaderMap) -> (PublishContext, HeaderValue) {
        let correlation = usable(headers, &self.correlation_header)
            .or_else(|| usable(headers, &REQUEST_ID))
            .map_or_else(
                || {
                    let mut buffer = uuid::Uuid::encode_buffer();
                    let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buffer);
                    HeaderValue::from_str(id).expect("a UUID is a valid header value")
                },
                Clone::clone,
            );
        let mut context = PublishContext::new().correlation_id(
            correlation
                .to_str()
                .expect("checked or generated as visible ASCII"),
        );
        if let Some(traceparent) = headers
            .get(TRACEPARENT)
            .and_then(|value| value.to_str().ok())
            .filter(|value| is_traceparent(value))
        {
            context = context.trace_id(traceparent);
        }
        if let Some(tenant) = usable(headers, &self.tenant_header) {
            context = context.tenant(tenant.to_str().expect("checked as visible ASCII"));
        }
        if let Some(source) = &self.source {
            context = context.source(source);
        }
        (context, correlation)
    }
}

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContextService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`RequestContextLayer`]: runs the future of `inner` for each request inside
/// the request's [`PublishContext::scope`], and echoes the correlation id in its response.
///
/// `inner`'s `call` itself runs outside the scope (a tower `call` returns its future before
/// the scope can be entered); an axum handler's body runs inside it, being that future.
///
/// ```
/// use event_core::http::{RequestContextLayer, RequestContextService};
/// use tower_layer::Layer;
///
/// #[derive(Clone)]
/// struct App;
///
/// let service: RequestContextService<App> = RequestContextLayer::new().layer(App);
/// # let _ = service;
/// ```
#[derive(Debug, Clone)]
pub struct RequestContextService<S> {
    inner: S,
    layer: RequestContextLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestContextService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (context, correlation_id) = self.layer.context(request.headers());
        ResponseFuture {
            inner: context.scoped(self.inner.call(request)),
            header: self.layer.correlation_header.clone(),
            correlation_id,
        }
    }
}

pin_project! {
    /// The response future of [`RequestContextService`]: the inner service's, polled inside
    /// the request's scope; its response gets the correlation id header.
    ///
    /// ```
    /// use event_core::http::ResponseFuture;
    ///
    /// fn named(_: Option<ResponseFuture<std::future::Ready<()>>>) {}
    /// named(None);
    /// ```
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: TaskLocalFuture<PublishContext, F>,
        header: HeaderName,
        correlation_id: HeaderValue,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        // The layer owns this header: it replaces whatever the handler set.
        response
            .headers_mut()
            .insert(this.header.clone(), this.correlation_id.clone());
        Poll::Ready(Ok(response))
    }
}

/// The value of `name` in `headers`, if it can be taken as an id: 1 to 128 bytes of visible
/// ASCII (no space, no control character).
fn usable<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h HeaderValue> {
    headers.get(name).filter(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty() && bytes.len() <= MAX_VALUE_LEN && bytes.iter().all(u8::is_ascii_graphic)
    })
}

/// Whether `value` is a W3C `traceparent`: `{version}-{trace id}-{parent id}-{flags}` in
/// lowercase hex (2, 32, 16, 2 digits), version not `ff`, ids not all zeros; version `00`
/// has exactly these four fields, a later version may have more after a `-`.
fn is_traceparent(value: &str) -> bool {
    fn hex(field: &str, len: usize) -> bool {
        field.len() == len
            && field
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
    let (head, rest) = value.split_at_checked(55).unwrap_or((value, ""));
    let mut fields = head.split('-');
    let (Some(version), Some(trace), Some(parent), Some(flags), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return false;
    };
    let tail_ok = if version == "00" {
        rest.is_empty()
    } else {
        rest.is_empty() || rest.starts_with('-')
    };
    hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && hex(flags, 2)
        && tail_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_follows_the_w3c_format() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(is_traceparent(valid));
        assert!(is_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later"
        ));
        for bad in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert!(!is_traceparent(bad), "{bad}");
        }
    }

    #[test]
    fn unusable_values_are_skipped() {
        let mut headers = HeaderMap::new();
        let layer = RequestContextLayer::new();
        headers.insert(CORRELATION, HeaderValue::from_static("has space"));
        headers.insert(REQUEST_ID, HeaderValue::from_static("r-1"));
        assert_eq!(layer.context(&headers).1, "r-1");
        headers.insert(
            CORRELATION,
            HeaderValue::from_str(&"a".repeat(129)).unwrap(),
        );
        assert_eq!(layer.context(&headers).1, "r-1");
        headers.insert(
            CORRELATION,
            HeaderValue::from_str(&"a".repeat(128)).unwrap(),
        );
        assert_eq!(layer.context(&headers).1, "a".repeat(128).as_str());
    }
}
