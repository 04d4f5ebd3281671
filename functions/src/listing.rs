//! Paging of the engine's listings (`GET /trade/open`, `GET /trade/orders`): the engine
//! answers one bounded page per query (its page size, default 100), in id order, with the
//! last id listed as `next` when more follow.
//!
//! With `limit`, a route returns one page of at most that many items and `next`, to pass as
//! `after` for the following page (null on the last). Without `limit` it returns every item,
//! as before paging existed, fetched page by page from the engine (an account holds at most
//! the engine's caps: 500 positions, 200 orders by default) and `next` null.

use axum::extract::Query as QueryParams;
use axum::extract::rejection::QueryRejection;
use bus::{Page, Query, QueryReply};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::state::AppState;
use crate::trade::engine_query;

/// Most items one page may ask for.
pub const MAX_LIMIT: u32 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// One page of at most this many items (the engine may return fewer, with `next`);
    /// without it, every item.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The `next` of the previous page: list the items after it.
    #[param(pattern = r"^[0-9]{1,18}$")]
    after: Option<String>,
}

/// The request's page, or 400 `invalid_query`.
pub fn requested(params: Result<QueryParams<Params>, QueryRejection>) -> Result<Page, ApiError> {
    let QueryParams(params) =
        params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = match params.limit {
        Some(l) if !(1..=MAX_LIMIT).contains(&l) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be 1 to {MAX_LIMIT}"),
            ));
        }
        l => l,
    };
    let after = params
        .after
        .map(|a| {
            let digits = !a.is_empty() && a.len() <= 18 && a.bytes().all(|b| b.is_ascii_digit());
            digits
                .then(|| a.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| ApiError::bad_request("invalid_query", "`after` is not a `next`"))
        })
        .transpose()?;
    Ok(Page { after, limit })
}

/// One page (with `page.limit`) or every item from `page.after` on (without), made by
/// `query` for a page and split by `items` into the page's items and its `next`.
pub async fn list<T>(
    state: &AppState,
    page: Page,
    query: impl Fn(Page) -> Query,
    items: impl Fn(QueryReply) -> Result<(Vec<T>, Option<u64>), ApiError>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let mut all = Vec::new();
    let mut at = page;
    loop {
        let (mut got, next) = items(engine_query(state, query(at)).await?)?;
        all.append(&mut got);
        match (page.limit, next) {
            (Some(_), next) => return Ok((all, next.map(|n| n.to_string()))),
            (None, None) => return Ok((all, None)),
            (None, Some(n)) => at.after = Some(n),
        }
    }
}
