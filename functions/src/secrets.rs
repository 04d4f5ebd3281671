//! Secrets of the Lambda functions, read once at start from AWS Secrets Manager through the
//! AWS Parameters and Secrets Lambda Extension (plain HTTP on localhost, authenticated by the
//! function's session token), so the deployed configuration holds only the secrets' ARNs:
//!
//! - `JWT_SECRET_ARN`: the whole secret string is the token signing key (`JWT_SECRET`);
//! - `DATABASE_SECRET_ARN`: an RDS-style JSON secret whose `password` goes into `DATABASE_URL`.
//!
//! With neither variable set nothing is read (local runs, containers that get their secrets
//! from ECS). The extension listens on `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` (2773).

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

/// Why a configured secret could not be read; the function then fails its init.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{var}: the secrets extension could not be reached: {reason}")]
    Unreachable { var: &'static str, reason: String },
    #[error("{var}: the secrets extension answered {status}")]
    Refused { var: &'static str, status: u16 },
    #[error("{var}: the secret is not in the expected form: {reason}")]
    Malformed { var: &'static str, reason: String },
    #[error("DATABASE_URL is not a PostgreSQL URL: {0}")]
    DatabaseUrl(String),
}

/// The settings that come from Secrets Manager, as `(variable, value)` pairs to lay over the
/// environment: `JWT_SECRET` when `JWT_SECRET_ARN` is set, `DATABASE_URL` (the environment's,
/// with the secret's password) when `DATABASE_SECRET_ARN` is set. Empty when neither is.
pub async fn overrides() -> Result<Vec<(&'static str, String)>, SecretError> {
    let mut pairs = Vec::new();
    if let Some(arn) = var("JWT_SECRET_ARN") {
        pairs.push(("JWT_SECRET", fetch("JWT_SECRET_ARN", &arn).await?));
    }
    if let Some(arn) = var("DATABASE_SECRET_ARN") {
        let text = fetch("DATABASE_SECRET_ARN", &arn).await?;
        let password = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["password"].as_str().map(str::to_owned))
            .ok_or_else(|| SecretError::Malformed {
                var: "DATABASE_SECRET_ARN",
                reason: "no JSON field `password`".into(),
            })?;
        let url = var("DATABASE_URL").unwrap_or_default();
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| SecretError::DatabaseUrl(e.to_string()))?;
        pairs.push((
            "DATABASE_URL",
            options.password(&password).to_url_lossy().to_string(),
        ));
    }
    Ok(pairs)
}

fn var(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// `GET /secretsmanager/get?secretId=<arn>` on the extension; returns `SecretString`.
async fn fetch(var_name: &'static str, arn: &str) -> Result<String, SecretError> {
    let unreachable = |reason: String| SecretError::Unreachable {
        var: var_name,
        reason,
    };
    let port = var("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT").unwrap_or_else(|| "2773".into());
    let token = var("AWS_SESSION_TOKEN").unwrap_or_default();
    let tcp = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(connection);
    let request = hyper::Request::get(format!(
        "/secretsmanager/get?secretId={}",
        percent_encode(arn)
    ))
    .header("host", format!("localhost:{port}"))
    .header("X-Aws-Parameters-Secrets-Token", token)
    .body(Empty::<Bytes>::new())
    .map_err(|e| unreachable(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(SecretError::Refused {
            var: var_name,
            status,
        });
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable(e.to_string()))?
        .to_bytes();
    let malformed = |reason: &str| SecretError::Malformed {
        var: var_name,
        reason: reason.into(),
    };
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| malformed("the answer is not JSON"))?;
    value["SecretString"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| malformed("no SecretString"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn arns_are_percent_encoded() {
        assert_eq!(
            super::percent_encode("arn:aws:secretsmanager:eu-west-1:1:secret:jwt/a-B~"),
            "arn%3Aaws%3Asecretsmanager%3Aeu-west-1%3A1%3Asecret%3Ajwt%2Fa-B~"
        );
    }
}
