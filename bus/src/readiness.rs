//! The one JSON shape of every process's `GET /readyz`: what the process depends on and
//! whether each dependency answers, e.g.
//! `{"status":"not_ready","checks":[{"name":"nats","ok":true},{"name":"lease","ok":false,"detail":"held by engine-2"}]}`.
//! 200 when every check is ok, 503 otherwise.

use serde::{Deserialize, Serialize};

/// A process's readiness: the verdict and the checks it is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    pub status: ReadyStatus,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
    NotReady,
}

/// One dependency (or duty, such as the engine's writer lease) and whether it is fine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Check {
    /// What is checked: `nats`, `postgres`, `redis`, `lease`, `quotes`…
    pub name: String,
    pub ok: bool,
    /// Why it is not ok (or a useful fact when it is), safe to show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    pub fn ok(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ok: true,
            detail: None,
        }
    }

    pub fn failed(name: &str, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_string(),
            ok: false,
            detail: Some(detail.into()),
        }
    }

    pub fn from_result(name: &str, result: Result<(), String>) -> Self {
        match result {
            Ok(()) => Self::ok(name),
            Err(detail) => Self::failed(name, detail),
        }
    }
}

impl Readiness {
    /// Ready exactly when every check is ok.
    pub fn of(checks: Vec<Check>) -> Self {
        let status = if checks.iter().all(|c| c.ok) {
            ReadyStatus::Ready
        } else {
            ReadyStatus::NotReady
        };
        Self { status, checks }
    }

    pub fn is_ready(&self) -> bool {
        self.status == ReadyStatus::Ready
    }

    /// The HTTP status that goes with it: 200 or 503.
    pub fn http_status(&self) -> u16 {
        if self.is_ready() { 200 } else { 503 }
    }

    /// These checks and then `more` (a process made of parts, like the local runner).
    pub fn and(self, more: Readiness) -> Self {
        let mut checks = self.checks;
        checks.extend(more.checks);
        Self::of(checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_is_ok() {
        let ready = Readiness::of(vec![Check::ok("nats"), Check::ok("postgres")]);
        assert_eq!((ready.is_ready(), ready.http_status()), (true, 200));
        let not = ready.and(Readiness::of(vec![Check::failed("lease", "not held")]));
        assert_eq!((not.is_ready(), not.http_status()), (false, 503));
        assert_eq!(
            serde_json::to_value(&not).expect("json"),
            serde_json::json!({"status": "not_ready", "checks": [
                {"name": "nats", "ok": true},
                {"name": "postgres", "ok": true},
                {"name": "lease", "ok": false, "detail": "not held"},
            ]})
        );
    }
}
