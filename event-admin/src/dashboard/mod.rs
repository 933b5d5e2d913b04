//! The dashboard: one HTML page, its script and its style, served as they are (no build
//! step). The page holds no data: it asks for a token and reads the API with it.

use axum::extract::OriginalUri;
use axum::http::{Uri, header};
use axum::response::IntoResponse;

/// The page loads its own script and style and talks to its own origin, nothing else: no
/// inline script, no other site, no framing, and no form submitted by the browser itself
/// (the token form is read by the script; without it, the token must not land in a URL).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The headers of every dashboard file: revalidated on each load (they change with the
/// binary), never sniffed as another type.
fn served(content_type: &'static str, body: impl IntoResponse) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
}

/// The page, its links made to the path the router is mounted at (`/admin` when nested
/// there): the script reads that base from `<body data-base>` for its API calls.
pub(crate) async fn page(OriginalUri(original): OriginalUri, inner: Uri) -> impl IntoResponse {
    // Nested, the router sees the path without its prefix; the original has it.
    let base = original
        .path()
        .trim_end_matches('/')
        .strip_suffix(inner.path().trim_end_matches('/'))
        .unwrap_or_default();
    // A route path, not request data; escaped all the same, since it goes in attributes.
    let base = base
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    let html = include_str!("index.html")
        .replace("\"/assets/", &format!("\"{base}/assets/"))
        .replace("<body>", &format!("<body data-base=\"{base}\">"));
    served("text/html; charset=utf-8", html)
}

pub(crate) async fn script() -> impl IntoResponse {
    served("text/javascript; charset=utf-8", include_str!("app.js"))
}

pub(crate) async fn style() -> impl IntoResponse {
    served("text/css; charset=utf-8", include_str!("style.css"))
}
