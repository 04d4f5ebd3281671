//! The one settings layer every binary reads its environment through (engine, functions and
//! their Lambda mains, the local runner, the price feed, the WebSocket hub, candle ingest).
//!
//! Each binary declares a serde struct of optional fields named after its variables and reads
//! it with [`Env::read`] (`envy` underneath); values that need more than a number or a bool
//! go through [`Env::parse`]. Whatever way a value is read, an unreadable one is an error that
//! names the variable, so a typo stops the start instead of silently keeping a default. Unset
//! and empty (or blank) variables are the same: unset.
//!
//! Secrets have no usable default outside local mode: `APP_ENV=local` (set by `local/up`,
//! `local/test` and the tests) lets the signing key fall back to the public development key;
//! unset or `APP_ENV=production`, [`Env::jwt_secret`] refuses a missing, short or public key.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::de::DeserializeOwned;

/// The variable that selects local (development) mode.
pub const APP_ENV: &str = "APP_ENV";
/// The variable holding the HS256 key of the session tokens.
pub const JWT_SECRET: &str = "JWT_SECRET";
/// The shortest signing key accepted outside local mode (256 bits, HS256's hash size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// The development signing key: public (it is in the repository), so accepted in local mode
/// only.
pub const DEV_JWT_SECRET: &str = "dev-only-secret-change-me-in-production";

/// A setting that cannot be used; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad setting: {0}")]
pub struct SettingsError(String);

impl SettingsError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// `name` holds `value`, which is not what it should be (`expected`).
    pub fn invalid(name: &str, value: &str, expected: &str) -> Self {
        Self(format!(
            "{name}={value:?} is not valid: expected {expected}"
        ))
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

/// Where the process runs: local mode relaxes the secrets' rules, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Local,
    Production,
}

/// A snapshot of the environment (or of given pairs, in tests: edition 2024 makes changing
/// the process environment `unsafe`, which this workspace forbids).
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: values may be secrets.
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

impl Env {
    /// The process environment. A value that is not UTF-8 is read lossily, so it fails to
    /// parse (naming its variable) rather than vanishing.
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        }))
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into().trim().to_string()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        Self { vars }
    }

    /// These pairs laid over the snapshot (a blank value unsets its name), e.g. secrets read
    /// from a secret store at start.
    #[must_use]
    pub fn overlaid<K: Into<String>, V: Into<String>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.vars.extend(Self::from_pairs(pairs).vars);
        self
    }

    /// `name` set to `value` unless it is set already (tools that default to local mode).
    #[must_use]
    pub fn with_default(mut self, name: &str, value: &str) -> Self {
        if !value.trim().is_empty() {
            self.vars
                .entry(name.to_string())
                .or_insert_with(|| value.trim().to_string());
        }
        self
    }

    /// The value of `name`, if set and not blank (trimmed).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Reads a struct whose fields are the lower-case names of its variables; an unreadable
    /// number or bool is an error naming the variable.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, SettingsError> {
        envy::from_iter(self.vars.clone()).map_err(|e| SettingsError(e.to_string()))
    }

    /// Parses `name` with `FromStr`, if set; `expected` says what a good value looks like.
    pub fn parse<T: FromStr>(
        &self,
        name: &str,
        expected: &str,
    ) -> Result<Option<T>, SettingsError> {
        self.get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| SettingsError::invalid(name, v, expected))
            })
            .transpose()
    }

    /// An `on`/`off` switch: `on` (or unset) is true, `off` false, anything else an error.
    pub fn switch(&self, name: &str) -> Result<bool, SettingsError> {
        match self.get(name) {
            None | Some("on") => Ok(true),
            Some("off") => Ok(false),
            Some(other) => Err(SettingsError::invalid(name, other, "on or off")),
        }
    }

    /// `APP_ENV`: `local` or `production` (the default: unset means production).
    pub fn mode(&self) -> Result<Mode, SettingsError> {
        match self.get(APP_ENV) {
            None | Some("production") => Ok(Mode::Production),
            Some("local") => Ok(Mode::Local),
            Some(other) => Err(SettingsError::invalid(
                APP_ENV,
                other,
                "local or production",
            )),
        }
    }

    /// `ENGINE_PREFIX`, the isolation prefix of every stream, subject and bucket (default
    /// empty): letters, digits, `_` and `-` only.
    pub fn bus_prefix(&self) -> Result<String, SettingsError> {
        let prefix = self.get("ENGINE_PREFIX").unwrap_or_default();
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if prefix.chars().all(valid) {
            Ok(prefix.to_string())
        } else {
            Err(SettingsError::invalid(
                "ENGINE_PREFIX",
                prefix,
                "letters, digits, '_' and '-' only",
            ))
        }
    }

    /// The HS256 key of the session tokens (`JWT_SECRET`), read the same way by every binary
    /// that signs or verifies them. Outside local mode it must be set, at least
    /// [`MIN_JWT_SECRET_BYTES`] long and not the public development key; in local mode an
    /// unset one is [`DEV_JWT_SECRET`]. The error never shows the value.
    pub fn jwt_secret(&self) -> Result<String, SettingsError> {
        let mode = self.mode()?;
        let Some(secret) = self.get(JWT_SECRET) else {
            return match mode {
                Mode::Local => Ok(DEV_JWT_SECRET.to_string()),
                Mode::Production => Err(SettingsError(format!(
                    "{JWT_SECRET} is not set: give it a random key of at least \
                     {MIN_JWT_SECRET_BYTES} bytes (or set {APP_ENV}=local for development)"
                ))),
            };
        };
        if mode == Mode::Production {
            if secret.len() < MIN_JWT_SECRET_BYTES {
                return Err(SettingsError(format!(
                    "{JWT_SECRET} is too short ({} bytes): at least {MIN_JWT_SECRET_BYTES} \
                     bytes outside {APP_ENV}=local",
                    secret.len()
                )));
            }
            if secret == DEV_JWT_SECRET {
                return Err(SettingsError(format!(
                    "{JWT_SECRET} is the public development key: set a secret one"
                )));
            }
        }
        Ok(secret.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Sample {
        jwt_ttl_secs: Option<u64>,
        engine_purge_inputs: Option<bool>,
    }

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn unreadable_values_name_their_variable_and_blank_ones_are_unset() {
        let err = env(&[("JWT_TTL_SECS", "abc")])
            .read::<Sample>()
            .expect_err("refused");
        assert!(err.message().contains("JWT_TTL_SECS"), "{err}");
        let err = env(&[("ENGINE_PURGE_INPUTS", "yes")])
            .read::<Sample>()
            .expect_err("refused");
        assert!(err.message().contains("ENGINE_PURGE_INPUTS"), "{err}");
        let s: Sample = env(&[("JWT_TTL_SECS", "  "), ("ENGINE_PURGE_INPUTS", "false")])
            .read()
            .expect("reads");
        assert_eq!((s.jwt_ttl_secs, s.engine_purge_inputs), (None, Some(false)));
        let err = env(&[("HTTP_ADDR", "nowhere")])
            .parse::<std::net::SocketAddr>("HTTP_ADDR", "host:port")
            .expect_err("refused");
        assert!(err.message().starts_with("HTTP_ADDR="), "{err}");
        let err = env(&[("ENGINE_PREFIX", "a.b")]).bus_prefix().err();
        assert!(err.expect("refused").message().contains("ENGINE_PREFIX"));
    }

    #[test]
    fn the_secret_is_required_and_strong_outside_local_mode() {
        let strong = "k".repeat(MIN_JWT_SECRET_BYTES);
        for bad in [
            env(&[]),
            env(&[("JWT_SECRET", "")]),
            env(&[("JWT_SECRET", "short")]),
            env(&[("JWT_SECRET", DEV_JWT_SECRET)]),
            env(&[("APP_ENV", "production"), ("JWT_SECRET", " ")]),
        ] {
            let err = bad.jwt_secret().expect_err("refused");
            assert!(err.message().contains("JWT_SECRET"), "{err}");
            assert!(!err.message().contains("short\""), "never shows the value");
        }
        assert_eq!(env(&[("JWT_SECRET", &strong)]).jwt_secret(), Ok(strong));
        let local = env(&[("APP_ENV", "local")]);
        assert_eq!(local.jwt_secret().as_deref(), Ok(DEV_JWT_SECRET));
        let err = env(&[("APP_ENV", "loacl")]).jwt_secret().err();
        assert!(err.expect("refused").message().contains("APP_ENV"));
    }
}
