//! The dashboard: one HTML page, its script and its style, served as they are (no build
//! step). The page holds no data: it asks for a token and reads the API with it.

use axum::http::header;
use axum::response::{Html, IntoResponse};

pub(crate) async fn page() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

pub(crate) async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("app.js"),
    )
}

pub(crate) async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
}
