//! The `OpenAPI` 3.1 document of the API (`GET /v1/openapi.json`): the routes listed here,
//! their response bodies' JSON Schemas generated from the types the handlers answer with.

use crate::api::error::ErrorBody;
use crate::api::params::{DEFAULT_PAGE, MAX_PAGE};
use crate::api::views::{
    ActionView, DeadLetterPage, DeadLetterView, EventPage, EventView, HealthView, StreamsView,
    SubscriptionPage,
};
use schemars::{SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// No token.
    Public,
    /// A token of the read scope.
    Read,
    /// A token of the operate scope.
    Operate,
}

/// A query or path parameter.
type Param = (&'static str, &'static str, &'static str);

/// One route of the API, as documented.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) access: Access,
    summary: &'static str,
    /// Query parameters: name, JSON type, description.
    query: &'static [Param],
    /// The status of success, and the schema of its body (by name), or a media type.
    ok: (u16, Body),
}

#[derive(Debug, Clone, Copy)]
enum Body {
    Schema(fn(&mut SchemaGenerator) -> schemars::Schema),
    Media(&'static str),
}

const PAGE: [Param; 2] = [
    ("cursor", "string", "The previous page's next_cursor."),
    (
        "limit",
        "integer",
        "Page size: default 50, at most 500 (larger is lowered).",
    ),
];

/// Every route of the API; the router serves exactly these (a test holds them together).
pub(crate) const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/health",
        access: Access::Public,
        summary: "Store and transport reachable, subscriptions under the lag threshold (200), or why not (503).",
        query: &[],
        ok: (
            200,
            Body::Schema(SchemaGenerator::subschema_for::<HealthView>),
        ),
    },
    Route {
        method: "get",
        path: "/metrics",
        access: Access::Public,
        summary: "Prometheus text exposition: counters and handler latency per subscription and event type, lag and in-flight gauges.",
        query: &[],
        ok: (200, Body::Media("text/plain")),
    },
    Route {
        method: "get",
        path: "/",
        access: Access::Public,
        summary: "The dashboard page (holds no data: it asks for a token and reads the API).",
        query: &[],
        ok: (200, Body::Media("text/html")),
    },
    Route {
        method: "get",
        path: "/v1/openapi.json",
        access: Access::Read,
        summary: "This document.",
        query: &[],
        ok: (200, Body::Media("application/json")),
    },
    Route {
        method: "get",
        path: "/v1/events",
        access: Access::Read,
        summary: "The timeline: events by partition key, aggregate, type, correlation id or time, with a cursor.",
        query: &[
            ("key", "string", "Only events of this partition key."),
            (
                "aggregate",
                "string",
                "Only events of the types of this aggregate.",
            ),
            (
                "type",
                "string",
                "Only events of these types (comma-separated).",
            ),
            (
                "correlation_id",
                "string",
                "Only events with this correlation id.",
            ),
            (
                "from",
                "string",
                "Only events appended at or after this RFC 3339 time.",
            ),
            (
                "until",
                "string",
                "Only events appended before this RFC 3339 time.",
            ),
            ("order", "string", "oldest (default) or newest first."),
            PAGE[0],
            PAGE[1],
        ],
        ok: (
            200,
            Body::Schema(SchemaGenerator::subschema_for::<EventPage>),
        ),
    },
    Route {
        method: "get",
        path: "/v1/events/{id}",
        access: Access::Read,
        summary: "One event by id.",
        query: &[],
        ok: (
            200,
            Body::Schema(SchemaGenerator::subschema_for::<EventView>),
        ),
    },
    Route {
        method: "get",
        path: "/v1/subscriptions",
        access: Access::Read,
        summary: "Every subscription with its checkpoint, lag, in-flight count and counters, by name.",
        query: &PAGE,
        ok: (
            200,
            Body::Schema(SchemaGenerator::subschema_for::<SubscriptionPage>),
        ),
    },
    Route {
        method: "post",
        path: "/v1/subscriptions/{name}/replay",
        access: Access::Operate,
        summary: "Reads a subscription's events again from a store position (a token for every tenant).",
        query: &[(
            "from",
            "integer",
            "Replay the events after this position (default 0: all).",
        )],
        ok: (
            202,
            Body::Schema(SchemaGenerator::subschema_for::<ActionView>),
        ),
    },
    Route {
        method: "get",
        path: "/v1/dead-letters",
        access: Access::Read,
        summary: "Dead letters, oldest first.",
        query: &[
            ("subscription", "string", "Only this subscription's."),
            PAGE[0],
            PAGE[1],
        ],
        ok: (
            200,
            Body::Schema(SchemaGenerator::subschema_for::<DeadLetterPage>),
        ),
    },
    Route {
        method: "get",
        path: "/v1/dead-letters/{id}",
        access: Access::Read,
        summary: "One dead letter.",
        query: &[],
        ok: (
            200,
            Body::Schema(SchemaGenerator::subschema_for::<DeadLetterView>),
        ),
    },
    Route {
        method: "post",
        path: "/v1/dead-letters/{id}/redeliver",
        access: Access::Operate,
        summary: "Sends a dead letter's event to its subscription again.",
        query: &[],
        ok: (
            202,
            Body::Schema(SchemaGenerator::subschema_for::<ActionView>),
        ),
    },
    Route {
        method: "delete",
        path: "/v1/dead-letters/{id}",
        access: Access::Operate,
        summary: "Takes a dead letter off the list without handling its event.",
        query: &[],
        ok: (
            200,
            Body::Schema(SchemaGenerator::subschema_for::<ActionView>),
        ),
    },
    Route {
        method: "get",
        path: "/v1/streams",
        access: Access::Read,
        summary: "The broker's topics, shards and consumer groups.",
        query: &[],
        ok: (
            200,
            Body::Schema(SchemaGenerator::subschema_for::<StreamsView>),
        ),
    },
    Route {
        method: "get",
        path: "/v1/catalog",
        access: Access::Read,
        summary: "The catalog of every event this service knows (event-catalog's catalog.json).",
        query: &[],
        ok: (200, Body::Media("application/json")),
    },
];

/// The document.
pub(crate) fn document() -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
    });
    let mut generator = settings.into_generator();
    let error = generator.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    for route in ROUTES {
        let mut parameters: Vec<Value> = path_parameters(route.path)
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        parameters.extend(route.query.iter().map(|(name, kind, description)| {
            let mut schema = json!({ "type": kind });
            if *name == "limit" {
                schema = json!({"type": "integer", "minimum": 1, "default": DEFAULT_PAGE, "maximum": MAX_PAGE});
            }
            json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
        }));
        let (status, body) = route.ok;
        let content = match body {
            Body::Schema(schema) => json!({"application/json": {"schema": schema(&mut generator)}}),
            Body::Media(media) => json!({ media: {"schema": {}} }),
        };
        let mut responses = Map::new();
        responses.insert(
            status.to_string(),
            json!({"description": "Success.", "content": content}),
        );
        let error_content = json!({"application/json": {"schema": error.clone()}});
        if route.path == "/health" {
            let health = generator.subschema_for::<HealthView>();
            responses.insert(
                "503".to_owned(),
                json!({"description": "A check failed.", "content": {"application/json": {"schema": health}}}),
            );
        }
        let mut errors = vec![("400", "A parameter is wrong: `parameter` names it.")];
        if route.access != Access::Public {
            errors.push(("401", "No bearer token, or not a valid one."));
            errors.push(("403", "The token's scope or tenant does not allow this."));
        }
        if route.path.starts_with("/v1/") && route.path != "/v1/openapi.json" {
            errors.push(("404", "No such event, dead letter or subscription."));
            errors.push((
                "409",
                "Not possible on this bus (no store, a consumer group).",
            ));
            errors.push(("503", "The store or the broker failed."));
        }
        for (code, description) in errors {
            responses
                .entry(code)
                .or_insert_with(|| json!({"description": description, "content": error_content}));
        }
        let mut operation = json!({
            "summary": route.summary,
            "operationId": operation_id(route),
            "parameters": parameters,
            "responses": responses,
        });
        match route.access {
            Access::Public => operation["security"] = json!([]),
            Access::Read => operation["x-required-scope"] = json!("read"),
            Access::Operate => operation["x-required-scope"] = json!("operate"),
        }
        paths
            .entry(route.path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a path item is an object")
            .insert(route.method.to_owned(), operation);
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "event-admin",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Operations on a typed event bus: timeline, subscriptions, dead letters, streams, catalog. PII fields read \"[redacted]\".",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}

/// The `{name}` segments of a path.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

fn operation_id(route: &Route) -> String {
    let words: Vec<&str> = route
        .path
        .split(['/', '-', '.', '{', '}'])
        .filter(|w| !w.is_empty() && *w != "v1")
        .collect();
    format!("{}_{}", route.method, words.join("_"))
}

/// The schemas of the response bodies, so that a test can check answers against them.
#[doc(hidden)]
pub fn response_schema(method: &str, path: &str, status: u16) -> Option<Value> {
    let document = document();
    let schema = document
        .pointer(&format!(
            "/paths/{}/{method}/responses/{status}/content/application~1json/schema",
            path.replace('~', "~0").replace('/', "~1")
        ))?
        .clone();
    let mut root = schema;
    if let Value::Object(map) = &mut root {
        map.insert("components".to_owned(), document["components"].clone());
    }
    Some(root)
}
