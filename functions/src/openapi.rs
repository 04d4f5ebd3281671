//! The OpenAPI 3 document of the HTTP API (`functions/openapi.json`, embedded at build time).
//! A test (`tests/openapi.rs`) keeps it true: every documented operation reaches a handler of
//! the merged router and every route is documented.

use serde_json::Value;

use crate::error::ApiError;

/// The document's text, exactly as checked in.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

pub fn document() -> Result<Value, ApiError> {
    serde_json::from_str(OPENAPI_JSON)
        .map_err(|e| ApiError::Internal(format!("openapi.json does not parse: {e}")))
}

/// Every `(METHOD, path)` the document describes, with paths as written (`/api/v1/...`).
pub fn operations() -> Result<Vec<(String, String)>, ApiError> {
    let doc = document()?;
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::Internal("openapi.json has no paths".into()))?;
    let mut ops = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.contains_key(method) {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops.sort();
    Ok(ops)
}
