//! Keeps the OpenAPI document complete and exact. The document is generated from the handlers
//! (`functions::openapi`); these tests check that it is the one served and the one checked in
//! (`functions/openapi.json`, rewritten with `UPDATE_OPENAPI=1`), that every route is
//! documented and every documented operation routed, that exactly the operations that need a
//! token say so, that every documented status is one the API can answer (see also
//! `tests/openapi_statuses.rs`, which provokes each one), and that the decimal pattern is
//! exactly what the edge parser accepts.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use functions::{AppState, Settings};
use serde_json::Value;
use support::{call, code};

/// The API without live dependencies: enough to see which routes exist.
async fn offline_api() -> axum::Router {
    let settings = Settings {
        nats_url: "nats://127.0.0.1:1".into(),
        database_url: "postgres://postgres@127.0.0.1:1/none".into(),
        engine_timeout: Duration::from_millis(50),
        db_acquire_timeout: Duration::from_millis(50),
        ..Settings::default()
    };
    functions::api(AppState::connect(&settings).await.expect("lazy state"))
}

/// The paths the router knows, read from its debug form (axum lists them there), less the two
/// axum registers for the fallback (`/` and its catch-all).
fn router_paths(app: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{app:?}");
    debug
        .split('"')
        .filter(|s| s.starts_with('/') && !s.contains(' '))
        .filter(|s| *s != "/" && !s.contains("__private__axum"))
        .map(str::to_string)
        .collect()
}

fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    &doc["paths"][path][method.to_lowercase()]
}

#[tokio::test]
async fn the_served_document_is_the_generated_one_and_the_checked_in_file() {
    let app = offline_api().await;
    let (status, served) = call(&app, Method::GET, "/api/v1/openapi.json", None, &[], None).await;
    assert_eq!(status, StatusCode::OK);
    let generated = functions::openapi::document();
    assert_eq!(&served, generated);
    assert!(
        served["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );

    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let pretty = serde_json::to_string_pretty(generated).expect("serialises") + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(file, &pretty).expect("write openapi.json");
    }
    let on_disk = std::fs::read_to_string(file).expect("read openapi.json");
    assert!(
        on_disk == pretty,
        "functions/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p functions --test it openapi::`"
    );
}

#[tokio::test]
async fn every_route_is_documented_and_every_operation_routed() {
    let app = offline_api().await;
    let operations = functions::openapi::operations();
    let documented: BTreeSet<String> = operations.iter().map(|(_, p)| p.clone()).collect();
    let routed = router_paths(&app);
    assert!(
        !routed.is_empty(),
        "the router's debug form lists its paths"
    );
    let (status, body) = call(&app, Method::GET, "/", None, &[], None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "not_found"),
        "`/` is only the fallback"
    );
    assert_eq!(routed, documented, "routes and documented paths");

    for (method, path) in &operations {
        let method: Method = method.parse().expect("method");
        let (status, body) = call(&app, method.clone(), path, None, &[], Some("{}".into())).await;
        let routing_miss = matches!(code(&body), "not_found" | "method_not_allowed");
        assert!(
            !routing_miss,
            "{method} {path} is documented but not routed: {status} {body}"
        );
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{method} {path}");
    }
    for path in &documented {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            if operations
                .iter()
                .any(|(m, p)| p == path && *m == method.as_str())
            {
                continue;
            }
            let (status, _) = call(&app, method.clone(), path, None, &[], None).await;
            assert_eq!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is routed but not documented"
            );
        }
    }
}

/// An operation lists the bearer scheme exactly when it answers 401 `unauthorized` without a
/// token (the token is checked before anything else, so `{}` as a body does not matter).
#[tokio::test]
async fn exactly_the_operations_that_need_a_token_say_so() {
    let app = offline_api().await;
    let doc = functions::openapi::document();
    assert!(doc.get("security").is_none(), "no document-wide security");
    for (method, path) in functions::openapi::operations() {
        let op = operation(doc, &method, &path);
        let secured = op["security"] == serde_json::json!([{ "bearer": [] }]);
        assert!(
            secured || op.get("security").is_none(),
            "{method} {path}: {op}"
        );
        let m: Method = method.parse().expect("method");
        let (status, body) = call(&app, m, &path, None, &[], Some("{}".into())).await;
        let refused = status == StatusCode::UNAUTHORIZED && code(&body) == "unauthorized";
        assert_eq!(secured, refused, "{method} {path}: {status} {body}");
        let documents_401 = op["responses"].get("401").is_some();
        assert!(
            !secured || documents_401,
            "{method} {path} needs a token: document 401"
        );
    }
}

/// Every status an operation documents is one the API answers with, with the error shape for
/// every error; every operation documents a success.
#[test]
fn every_status_is_answerable_and_every_error_has_the_error_shape() {
    let doc = functions::openapi::document();
    let errors: BTreeSet<&str> = [
        "400", "401", "404", "409", "413", "422", "429", "503", "504",
    ]
    .into_iter()
    .collect();
    for (method, path) in functions::openapi::operations() {
        let op = operation(doc, &method, &path);
        assert!(op["operationId"].is_string(), "{method} {path}");
        let responses = op["responses"].as_object().expect("responses");
        let successes: Vec<&String> = responses.keys().filter(|s| s.starts_with('2')).collect();
        assert_eq!(successes.len(), 1, "{method} {path}: one success status");
        for (status, response) in responses {
            if status.starts_with('2') {
                assert!(response["content"]["application/json"]["schema"].is_object());
                continue;
            }
            assert!(
                errors.contains(status.as_str()),
                "{method} {path}: {status}"
            );
            // A probe's 503 is its readiness report, the shape of every process's `/readyz`.
            if path == "/readyz" && status == "503" {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Readiness"
                );
                continue;
            }
            let reference = response["$ref"].as_str().expect("a shared error response");
            let name = reference.trim_start_matches("#/components/responses/");
            let shared = &doc["components"]["responses"][name];
            assert_eq!(
                shared["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Error",
                "{method} {path} {status}"
            );
            // Over a rate limit the client is told when to come back.
            if status == "429" {
                assert!(
                    shared["headers"]["Retry-After"]["schema"].is_object(),
                    "{method} {path}"
                );
            }
        }
        let has_body = op.get("requestBody").is_some();
        for (status, why) in [("400", "a body or parameters"), ("413", "a body")] {
            let takes_input = if status == "413" {
                has_body
            } else {
                has_body || op.get("parameters").is_some()
            };
            assert_eq!(
                responses.contains_key(status),
                takes_input,
                "{method} {path}: {status} exactly when it takes {why}"
            );
        }
    }
}

#[test]
fn every_reference_resolves() {
    let doc = functions::openapi::document();
    let text = doc.to_string();
    for piece in text.split("\"#/components/").skip(1) {
        let reference = piece.split('"').next().expect("ref");
        let mut node = &doc["components"];
        for part in reference.split('/') {
            node = &node[part];
        }
        assert!(!node.is_null(), "dangling $ref #/components/{reference}");
    }
}

/// A small deterministic generator (no dependency) of strings near the decimal grammar.
fn candidates() -> Vec<String> {
    let alphabet = ['0', '0', '1', '5', '9', '.', '.', '-', '+', 'e', '_', ' '];
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out: Vec<String> = (0..40_000)
        .map(|_| {
            let len = (next() % 32) as usize;
            (0..len).map(|_| alphabet[(next() % 12) as usize]).collect()
        })
        .collect();
    for int in [
        "0",
        "1",
        "10",
        "9999999999999999",
        "10000000000000000",
        "01",
    ] {
        out.push(int.to_string());
        for fraction in [
            "0",
            "000000000001",
            "0000000000001",
            "5",
            "000000000000",
            "10",
        ] {
            out.push(format!("{int}.{fraction}"));
        }
    }
    out
}

#[test]
fn the_decimal_pattern_is_exactly_what_the_edge_accepts() {
    let pattern = functions::input::positive_decimal_pattern();
    let regex = regex::Regex::new(&pattern).expect("the pattern compiles");
    let mut accepted = 0;
    for s in candidates() {
        let parsed = functions::input::parse_positive(&s).is_some();
        assert_eq!(regex.is_match(&s), parsed, "{s:?} against {pattern}");
        accepted += usize::from(parsed);
    }
    assert!(
        accepted > 500,
        "the sample reaches both sides ({accepted} accepted)"
    );
    let doc = functions::openapi::document();
    let quantity = &doc["components"]["schemas"]["OpenRequest"]["properties"]["quantity"];
    assert_eq!(quantity["pattern"], pattern.as_str());
}
