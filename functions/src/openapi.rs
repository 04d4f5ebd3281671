//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers themselves: every
//! handler carries `#[utoipa::path]` (method, path, parameters, body, every status it can
//! answer), every request and response type derives its schema, and each function's
//! `router()` registers handler and operation together (`utoipa_axum::routes!`), so what is
//! served and what is documented come from one list ([`crate::routers`]).
//!
//! `functions/openapi.json` is a copy for tools that read a file (the web client, the API
//! reference); `tests/openapi.rs` fails when it differs from the generated document
//! (`UPDATE_OPENAPI=1` rewrites it).

use std::sync::OnceLock;

use axum::http::Method;
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, Object, OpenApi, Ref, RefOr, Type,
};
use utoipa::{PartialSchema, ToResponse, ToSchema};

/// The name of the bearer-token security scheme that protected operations list.
pub const BEARER: &str = "bearer";

/// The body of every error: `{"error": {"code", "message"}}` (see [`crate::error`]).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable snake_case code; each status lists the codes it carries.
    #[schema(examples("invalid_request"))]
    pub code: String,
    /// A human-readable explanation, safe to show (fixed text for 5xx).
    pub message: String,
}

/// Reusable error responses (`#/components/responses/<Name>`), one per status, each with the
/// codes it carries.
macro_rules! error_responses {
    ($($name:ident => $description:literal),* $(,)?) => {
        $(
            #[doc = $description]
            pub struct $name;
            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), error_response($description))
                }
            }
        )*
        fn error_components(components: ComponentsBuilder) -> ComponentsBuilder {
            components$(.response_from::<$name>())*
        }
    };
}

error_responses!(
    BadRequest => "Malformed input, nothing changed: `invalid_json` (not JSON), `invalid_request` (a field missing, of the wrong type or outside its documented form, or an unknown field), and by route `invalid_email`, `weak_password`, `invalid_idempotency_key`, `invalid_query`, `invalid_asset`, `invalid_interval`, `invalid_range`, `invalid_limit`",
    Unauthorized => "`unauthorized`: the bearer token is missing, malformed, expired, wrongly signed or names a deleted user; `invalid_credentials` on signin",
    NotFound => "`position_not_found` (not one of the user's open positions), `order_not_found` (not one of the user's pending orders), `account_not_found`, or `alert_not_found` (not one of the user's alerts)",
    Conflict => "`email_taken` on signup; `idempotency_key_reused`: the Idempotency-Key was used for a different request; `idempotency_key_expired`: a retry of a request that was applied, but longer ago than the engine remembers its answer (24 h, or more than the account's newest 10,000 requests ago): check the state and use a new key; `too_many_alerts` (50 active alerts already); `alert_not_active` (cancelling an alert that has fired)",
    PayloadTooLarge => "`payload_too_large`: the body is over the limit (16 KiB by default)",
    Unprocessable => "A well-formed request that breaks a trading rule: `no_price`, `insufficient_margin`, `invalid_leverage`, `invalid_quantity`, `invalid_stop_loss`, `invalid_take_profit`, `slippage_exceeded`, `invalid_trailing_distance`, `too_many_positions` (the account has the most open positions allowed, 500 by default); on market opens and closes `price_stale` (the asset's last price is older than the engine's limit, 30 s by default: retry with a new Idempotency-Key once prices flow again); for pending orders `too_many_orders` (the most pending orders allowed, 200 by default), `invalid_order_price` (the wrong side of the market for its side and type) and `invalid_expiry` (not after the time of the request); on `/account/pnl` `invalid_range` (more than 10,000 buckets: narrow the range or use `interval=1w`)",
    Unavailable => "`unavailable`: NATS, PostgreSQL or the engine cannot be reached; retry later. On signin and signup also when too many passwords are being hashed already (then with `Retry-After`, seconds)",
    EngineTimeout => "`engine_timeout`: the engine did not answer in time; a command may still be applied, so retry with the same Idempotency-Key",
);

/// 429 `rate_limited`, listed on exactly the operations [`crate::limits::limited`] names (by
/// [`build`], not by hand on each handler), with its `Retry-After` header.
pub struct TooManyRequests;

const TOO_MANY_REQUESTS: &str = "`rate_limited`: over a rate limit (signin and signup: per client address and per email; trade and alert commands: per account); `Retry-After` says in how many seconds to retry. Nothing changed";

impl<'r> ToResponse<'r> for TooManyRequests {
    fn response() -> (&'r str, RefOr<Response>) {
        let retry_after = HeaderBuilder::new()
            .schema(Some(Object::with_type(Type::Integer)))
            .description(Some("Seconds until the limit has room again"))
            .build();
        let response = ResponseBuilder::new()
            .description(TOO_MANY_REQUESTS)
            .header("Retry-After", retry_after)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                    .build(),
            )
            .build();
        ("TooManyRequests", response.into())
    }
}

/// Adds the 429 response to every rate-limited operation.
fn list_rate_limits(doc: &mut OpenApi) {
    let too_many = RefOr::Ref(Ref::from_response_name(TooManyRequests::response().0));
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            (Method::GET, &mut item.get),
            (Method::POST, &mut item.post),
            (Method::PUT, &mut item.put),
            (Method::DELETE, &mut item.delete),
            (Method::PATCH, &mut item.patch),
        ];
        for (method, op) in ops {
            if let Some(op) = op
                && crate::limits::limited(&method, path).is_some()
            {
                op.responses
                    .responses
                    .insert("429".into(), too_many.clone());
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build()
        .into()
}

/// The generated document.
pub fn build() -> OpenApi {
    let mut doc = crate::routers().into_openapi();
    doc.info = InfoBuilder::new()
        .title("exness-rs trading API")
        .version("1.0.0")
        .description(Some(
            "Demo CFD trading: JSON in and out, money and prices as decimal strings, errors as \
             {\"error\": {\"code\", \"message\"}}. Operations that list `bearer` security need \
             `Authorization: Bearer <token>` from POST /api/v1/auth/signin.",
        ))
        .build();
    let mut components = ComponentsBuilder::new()
        .schema_from::<ErrorBody>()
        .schema(ErrorDetail::name(), ErrorDetail::schema())
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    components = error_components(components).response_from::<TooManyRequests>();
    list_rate_limits(&mut doc);
    let generated = doc.components.take().unwrap_or_default();
    let mut all = components.build();
    all.schemas.extend(generated.schemas);
    doc.components = Some(all);
    doc
}

/// The document as JSON, built once per process.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        // Serialising plain data structures (strings, maps, numbers) cannot fail.
        serde_json::to_value(build()).unwrap_or(Value::Null)
    })
}

/// Every `(METHOD, path)` the document describes, sorted.
pub fn operations() -> Vec<(String, String)> {
    let mut ops = Vec::new();
    if let Some(paths) = document().get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ] {
                if item.get(method).is_some() {
                    ops.push((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    ops.sort();
    ops
}
