//! The HTTP API's per-client limits: request rates ([`RateLimits`], over a limit 429
//! `rate_limited` with `Retry-After`) and their settings ([`LimitSettings`]), including the
//! bound on password hashing ([`crate::hash_pool`]).
//!
//! Which routes are limited is decided in one place, [`limited`], read both by the request
//! path ([`crate::observe`] calls [`admit`] before the handler) and by the OpenAPI document
//! (which lists 429 on exactly those operations):
//! - sign-in and sign-up: per client address here, and per email in the handlers
//!   ([`RateLimits::email`]: a short and a long budget, so the wait grows from seconds to
//!   minutes as an email keeps being tried);
//! - every `POST` under `/api/v1/trade` and `/api/v1/alerts`: per account (the token's user,
//!   verified here once and handed to [`crate::auth::AuthUser`]).

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use bus::UserId;
use bus::limits::{DEFAULT_MAX_KEYS, KeyedLimiter, Rate, TrustedProxies};
use bus::settings::{Env, SettingsError};

use crate::error::ApiError;
use crate::state::AppState;

/// Every limit of the HTTP API, with its variable and default (README "Limits").
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// `RATE_AUTH_ADDRESS` (30/60): sign-ins and sign-ups per client address.
    pub auth_address: Rate,
    /// `RATE_AUTH_EMAIL` (10/60): sign-ins and sign-ups per email, the short budget.
    pub auth_email: Rate,
    /// `RATE_AUTH_EMAIL_LONG` (30/3600): the same, the long budget (the backoff).
    pub auth_email_long: Rate,
    /// `RATE_ACCOUNT_COMMANDS` (50/5): trade and alert commands per account.
    pub account_commands: Rate,
    /// `RATE_LIMIT_MAX_KEYS` (100000): addresses, emails or accounts one limiter remembers.
    pub max_keys: usize,
    /// `TRUSTED_PROXIES` (none): whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// `HASH_CONCURRENCY` (the CPUs): password hashes computed at once (19 MiB each).
    pub hash_concurrency: usize,
    /// `HASH_QUEUE` (16): hashes waiting for a turn; past them 503 `unavailable` at once.
    pub hash_queue: usize,
}

// Constants: a zero in one would not compile (`Rate::of`).
const AUTH_ADDRESS: Rate = Rate::of(30, 60);
const AUTH_EMAIL: Rate = Rate::of(10, 60);
const AUTH_EMAIL_LONG: Rate = Rate::of(30, 3600);
const ACCOUNT_COMMANDS: Rate = Rate::of(50, 5);

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            auth_address: AUTH_ADDRESS,
            auth_email: AUTH_EMAIL,
            auth_email_long: AUTH_EMAIL_LONG,
            account_commands: ACCOUNT_COMMANDS,
            max_keys: DEFAULT_MAX_KEYS,
            trusted_proxies: TrustedProxies::default(),
            hash_concurrency: std::thread::available_parallelism().map_or(1, usize::from),
            hash_queue: 16,
        }
    }
}

impl LimitSettings {
    /// Reads the variables named on the fields; unset ones keep the default.
    pub fn from_vars(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        let rate = |name: &str, default: Rate| -> Result<Rate, SettingsError> {
            let expected = "N/S: at most N at once, refilled over S seconds (both at least 1)";
            Ok(env.parse(name, expected)?.unwrap_or(default))
        };
        let count = |name: &str, default: usize, min: usize| -> Result<usize, SettingsError> {
            let value = env.parse(name, "a whole number")?.unwrap_or(default);
            match value >= min {
                true => Ok(value),
                false => Err(SettingsError::invalid(
                    name,
                    &value.to_string(),
                    &format!("at least {min}"),
                )),
            }
        };
        Ok(Self {
            auth_address: rate("RATE_AUTH_ADDRESS", d.auth_address)?,
            auth_email: rate("RATE_AUTH_EMAIL", d.auth_email)?,
            auth_email_long: rate("RATE_AUTH_EMAIL_LONG", d.auth_email_long)?,
            account_commands: rate("RATE_ACCOUNT_COMMANDS", d.account_commands)?,
            max_keys: count("RATE_LIMIT_MAX_KEYS", d.max_keys, 1)?,
            trusted_proxies: env
                .parse(
                    "TRUSTED_PROXIES",
                    "comma-separated addresses or CIDR networks",
                )?
                .unwrap_or_default(),
            hash_concurrency: count("HASH_CONCURRENCY", d.hash_concurrency, 1)?,
            hash_queue: count("HASH_QUEUE", d.hash_queue, 0)?,
        })
    }
}

/// What a limited route is limited by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Sign-in and sign-up: the client's address (and the email, in the handler).
    Auth,
    /// A trading or alert command: the account.
    Command,
}

/// Whether `(method, route)` is rate limited, and by what (`route` is the route template).
pub fn limited(method: &Method, route: &str) -> Option<Limited> {
    if method != Method::POST {
        return None;
    }
    match route {
        "/api/v1/auth/signin" | "/api/v1/auth/signup" => Some(Limited::Auth),
        "/api/v1/alerts" => Some(Limited::Command),
        _ if route.starts_with("/api/v1/trade/") || route.starts_with("/api/v1/alerts/") => {
            Some(Limited::Command)
        }
        _ => None,
    }
}

/// The token's user, verified once by [`admit`] for [`crate::auth::AuthUser`].
#[derive(Debug, Clone, Copy)]
pub struct VerifiedUser(pub UserId);

/// The API's rate limiters; one per process (per Lambda container: a Lambda's limits hold
/// per container, the cloud's per-route throttles and WAF hold across them).
pub struct RateLimits {
    auth_address: KeyedLimiter<IpAddr>,
    auth_email: KeyedLimiter<u64>,
    auth_email_long: KeyedLimiter<u64>,
    account: KeyedLimiter<UserId>,
    trusted_proxies: TrustedProxies,
    /// Emails are remembered as keyed hashes: 8 bytes each whatever their length.
    email_hasher: std::hash::RandomState,
}

impl RateLimits {
    pub fn new(s: &LimitSettings) -> Self {
        Self {
            auth_address: KeyedLimiter::new(s.auth_address, s.max_keys),
            auth_email: KeyedLimiter::new(s.auth_email, s.max_keys),
            auth_email_long: KeyedLimiter::new(s.auth_email_long, s.max_keys),
            account: KeyedLimiter::new(s.account_commands, s.max_keys),
            trusted_proxies: s.trusted_proxies.clone(),
            email_hasher: std::hash::RandomState::new(),
        }
    }

    /// One sign-in or sign-up attempt for `email` (canonical form): the short budget, then
    /// the long one, so an email tried again and again waits longer and longer.
    pub fn email(&self, email: &str) -> Result<(), ApiError> {
        let key = self.email_hasher.hash_one(email);
        self.auth_email.check(&key).map_err(ApiError::RateLimited)?;
        self.auth_email_long
            .check(&key)
            .map_err(ApiError::RateLimited)
    }

    /// The client's address: API Gateway's `sourceIp` on Lambda; locally the TCP peer, or
    /// the forwarded client when the peer is a trusted proxy. `None` when the request came
    /// through neither (an in-process call): no per-address limit then.
    pub fn client_ip(&self, req: &Request) -> Option<IpAddr> {
        if let Some(ip) = lambda_source_ip(req) {
            return Some(ip);
        }
        let ConnectInfo(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>()?;
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        Some(self.trusted_proxies.client_ip(peer.ip(), forwarded))
    }
}

/// API Gateway's view of the caller (the TCP peer of the gateway), when on Lambda.
fn lambda_source_ip(req: &Request) -> Option<IpAddr> {
    use lambda_http::request::RequestContext;
    #[allow(irrefutable_let_patterns)] // one variant with the features this crate enables
    let RequestContext::ApiGatewayV2(ctx) = req.extensions().get::<RequestContext>()? else {
        return None;
    };
    ctx.http.source_ip.as_deref()?.parse().ok()
}

/// Checks a limited request's budget before its handler runs; for a command, remembers the
/// verified token's user for [`crate::auth::AuthUser`]. A request without a valid token is
/// not counted (its handler answers 401).
pub fn admit(state: &AppState, kind: Limited, req: &mut Request) -> Result<(), ApiError> {
    let limits = state.limits();
    match kind {
        Limited::Auth => match limits.client_ip(req) {
            Some(ip) => limits
                .auth_address
                .check(&ip)
                .map_err(ApiError::RateLimited),
            None => Ok(()),
        },
        Limited::Command => {
            let Some(user) = bearer(req).and_then(|t| state.tokens().verify(t).ok()) else {
                return Ok(());
            };
            limits.account.check(&user).map_err(ApiError::RateLimited)?;
            req.extensions_mut().insert(VerifiedUser(user));
            Ok(())
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(req: &Request) -> Option<&str> {
    let header = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// How long a client told `Retry-After` for a full hashing queue waits: about one hash.
pub const BUSY_RETRY: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_routes_are_the_auth_and_command_posts() {
        let post = Method::POST;
        assert_eq!(limited(&post, "/api/v1/auth/signin"), Some(Limited::Auth));
        assert_eq!(limited(&post, "/api/v1/auth/signup"), Some(Limited::Auth));
        for route in [
            "/api/v1/trade/open",
            "/api/v1/trade/orders/cancel",
            "/api/v1/alerts",
            "/api/v1/alerts/cancel",
        ] {
            assert_eq!(limited(&post, route), Some(Limited::Command), "{route}");
        }
        assert_eq!(limited(&Method::GET, "/api/v1/trade/open"), None);
        assert_eq!(limited(&post, "/api/v1/balance"), None);
        assert_eq!(limited(&post, "/api/v1/trades"), None);
    }

    #[test]
    fn settings_read_rates_and_refuse_bad_ones() {
        let env = Env::from_pairs([
            ("RATE_AUTH_EMAIL", "3/30"),
            ("TRUSTED_PROXIES", "10.0.0.0/8"),
        ]);
        let s = LimitSettings::from_vars(&env).expect("reads");
        assert_eq!(s.auth_email, Rate::new(3, 30).expect("rate"));
        assert!(s.trusted_proxies.contains("10.2.3.4".parse().expect("ip")));
        assert_eq!(s.auth_address, LimitSettings::default().auth_address);
        for (name, value) in [
            ("RATE_AUTH_ADDRESS", "30"),
            ("RATE_ACCOUNT_COMMANDS", "0/5"),
            ("TRUSTED_PROXIES", "example.com"),
            ("HASH_CONCURRENCY", "0"),
        ] {
            let err =
                LimitSettings::from_vars(&Env::from_pairs([(name, value)])).expect_err("refused");
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }
}
