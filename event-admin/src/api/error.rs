//! Errors as the API answers them: a status and a JSON body naming what went wrong.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

/// The body of every error answer.
///
/// ```json
/// {"error": "bad_parameter", "parameter": "limit", "message": "limit: not a number: \"ten\""}
/// ```
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// A stable code: `bad_parameter`, `unauthorized`, `forbidden`, `not_found`,
    /// `no_store`, `conflict`, `unavailable`.
    pub error: String,
    /// The query parameter or path segment at fault, for `bad_parameter`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// What happened, for people.
    pub message: String,
}

/// An error answer.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: error.to_owned(),
                parameter: None,
                message: message.into(),
            },
        }
    }

    /// 400: the parameter `parameter` is wrong.
    pub(crate) fn bad_parameter(parameter: &str, message: impl std::fmt::Display) -> Self {
        let mut error = ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_parameter",
            format!("{parameter}: {message}"),
        );
        error.body.parameter = Some(parameter.to_owned());
        error
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the bus has no store, so it keeps no history to show.
    pub(crate) fn no_store() -> Self {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_store",
            "this bus has no store: it keeps no history of events",
        )
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 503: the store or the broker failed.
    pub(crate) fn unavailable(message: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            message.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"event-admin\""),
            );
        }
        response
    }
}
