//! Keeps `functions/openapi.json` true: the served document is the file; every documented
//! operation reaches a handler; every route of the merged router is documented, and a
//! documented path answers 405 for the methods it does not document.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use functions::{AppState, Settings};
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

#[tokio::test]
async fn the_document_matches_the_routes() {
    let app = offline_api().await;
    let (status, served) = call(&app, Method::GET, "/api/v1/openapi.json", None, &[], None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, functions::openapi::document().expect("parses"));
    assert!(
        served["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );

    let operations = functions::openapi::operations().expect("operations");
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
    assert_eq!(
        routed, documented,
        "every route is documented and every documented path is routed"
    );

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

#[test]
fn every_operation_documents_its_responses_and_refs_resolve() {
    let doc = functions::openapi::document().expect("parses");
    let text = doc.to_string();
    for (method, path) in functions::openapi::operations().expect("operations") {
        let op = &doc["paths"][&path][method.to_lowercase()];
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path}"
        );
        assert!(op["operationId"].is_string(), "{method} {path}");
    }
    for piece in text.split("\"#/components/").skip(1) {
        let reference = piece.split('"').next().expect("ref");
        let mut node = &doc["components"];
        for part in reference.split('/') {
            node = &node[part];
        }
        assert!(!node.is_null(), "dangling $ref #/components/{reference}");
    }
}
