//! What every operation of the OpenAPI document answers besides its own results, added in one
//! place so no operation can forget one: a body that is not JSON (415), too large (413) or too
//! slow (408), an invalid or missing token (401), an id that is not an integer (400) or names
//! nothing (404), throttling (429) and a server that is temporarily unavailable (503). Each has
//! the error body.

use utoipa::openapi::{
    ContentBuilder, OpenApi, PathItem, Ref, RefOr, ResponseBuilder, path::Operation, schema::Schema,
};

/// Paths whose operations are throttled per user or per address.
const THROTTLED: &[&str] = &[
    "/api/videos/",
    "/api/favorites/",
    "/api/continue-watching/",
    "/register/",
    "/login/",
    "/jwt/",
    "/guest-login/",
    "/resend-activation/",
    "/reset-password/",
];

/// Adds the shared error answers to every operation of `openapi`.
pub(crate) fn complete(openapi: &mut OpenApi) {
    for (path, item) in &mut openapi.paths.paths {
        for operation in operations(item) {
            shared_errors(path, operation);
        }
    }
    // An event stream's schema (OpenAPI 3.1) describes one event: `status` events carry a
    // StatusDto, an `error` event (the video went away mid-stream) the error body.
    set_schema(
        openapi,
        "/api/videos/{id}/status/",
        "text/event-stream",
        serde_json::json!({
            "description": "One Server-Sent Event: `status` with a status, or `error` with the error body.",
            "oneOf": [
                event("status", "StatusDto"),
                event("error", "ErrorBody"),
            ],
        }),
    );
    // The legacy list is an array; with `page_size` it is a DRF page.
    set_schema(
        openapi,
        "/api/videos/",
        "application/json",
        serde_json::json!({
            "oneOf": [
                {"type": "array", "items": {"$ref": "#/components/schemas/VideoDto"}},
                {"$ref": "#/components/schemas/VideoPageDto"},
            ],
        }),
    );
}

fn event(name: &str, schema: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"type": "string", "const": name},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": format!("#/components/schemas/{schema}")},
            },
        },
    })
}

/// Replaces the schema of the 200 answer of `GET path` in `media_type`.
fn set_schema(openapi: &mut OpenApi, path: &str, media_type: &str, schema: serde_json::Value) {
    let Ok(schema) = serde_json::from_value::<Schema>(schema) else {
        tracing::error!(path, "an OpenAPI schema of the contract does not parse");
        return;
    };
    if let Some(operation) = openapi
        .paths
        .paths
        .get_mut(path)
        .and_then(|item| item.get.as_mut())
        && let Some(RefOr::T(response)) = operation.responses.responses.get_mut("200")
        && let Some(RefOr::T(content)) = response.content.get_mut(media_type)
    {
        content.schema = Some(RefOr::T(schema));
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn shared_errors(path: &str, operation: &mut Operation) {
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error(description));
    };
    let json_body = operation.request_body.as_ref().is_some_and(
        |body| matches!(body, RefOr::T(b) if b.content.contains_key("application/json")),
    );
    if json_body {
        add("400", "Invalid body or field");
        add("408", "The body did not arrive within `BODY_TIMEOUT`");
        add("413", "Body larger than the limit");
        add(
            "415",
            "Body is not `application/json` (or, where documented, a multipart form)",
        );
    }
    if path.contains("{id}") {
        add("400", "The id is not an integer");
        add("404", "No such video");
    }
    if operation.security.is_some() {
        add("401", "Missing, invalid or revoked token");
    }
    if THROTTLED.iter().any(|p| path.starts_with(p)) {
        add("429", "Throttled: `Retry-After` says when to try again");
    }
    add(
        "503",
        "Temporarily unavailable (database busy or unreachable, password hashing queue full): \
         retry later",
    );
}

fn error(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}
