//! The web page and the API reference inside the local runner: the built `web/dist` served as
//! static files on `WEB_ADDR` (default `127.0.0.1:3001`, the trader's page) and on
//! `DOCS_ADDR` (default `127.0.0.1:3000`, the interactive API reference at `/`), plus the CORS
//! layer that lets those pages call the API on another port.
//!
//! Both servers answer `GET /config.json` with where the API and the WebSocket hub listen, so
//! the same built files work on any ports (the page falls back to :8000 / :7070 without it).
//! `WEB=off` serves neither and adds no CORS layer. Both servers have the API's timeouts and
//! connection cap ([`crate::serve`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};

use bus::settings::Env;

use crate::RunError;

/// Where the page and the reference are served from and who may call the API from a browser.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// `WEB_ADDR`, default `127.0.0.1:3001` (port 0 picks a free port).
    pub web_addr: SocketAddr,
    /// `DOCS_ADDR`, default `127.0.0.1:3000`.
    pub docs_addr: SocketAddr,
    /// `WEB_DIR`, default `web/dist` (what `npm run build` in `web/` writes).
    pub web_dir: PathBuf,
    /// `CORS_ALLOWED_ORIGINS`, comma-separated (`http://host:port`); by default the page's
    /// and the reference's own origins (`localhost` and `127.0.0.1` forms of their ports).
    /// `None` means "the defaults for the ports actually bound".
    pub allowed_origins: Option<Vec<String>>,
}

impl WebSettings {
    /// From the environment; `None` when `WEB=off`. A setting that does not parse stops the
    /// start with an error naming it.
    pub fn from_vars(env: &Env) -> Result<Option<Self>, RunError> {
        if !env.switch("WEB")? {
            return Ok(None);
        }
        let addr = |name: &str, default: [u8; 4], port: u16| -> Result<SocketAddr, RunError> {
            Ok(env
                .parse(name, "an address such as 127.0.0.1:3001")?
                .unwrap_or_else(|| SocketAddr::from((default, port))))
        };
        let allowed_origins = env
            .get("CORS_ALLOWED_ORIGINS")
            .map(parse_origins)
            .transpose()?;
        Ok(Some(Self {
            web_addr: addr("WEB_ADDR", [127, 0, 0, 1], 3001)?,
            docs_addr: addr("DOCS_ADDR", [127, 0, 0, 1], 3000)?,
            web_dir: env.get("WEB_DIR").unwrap_or("web/dist").into(),
            allowed_origins,
        }))
    }
}

/// `http://a:1,http://b:2` into origins; each must be a valid header value with a scheme.
fn parse_origins(list: &str) -> Result<Vec<String>, RunError> {
    list.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let ok = (o.starts_with("http://") || o.starts_with("https://"))
                && HeaderValue::from_str(o).is_ok()
                && !o.ends_with('/');
            ok.then(|| o.to_string()).ok_or_else(|| {
                RunError::Settings(format!(
                    "CORS_ALLOWED_ORIGINS: {o:?} is not an origin like http://localhost:3001"
                ))
            })
        })
        .collect()
}

/// The page's and the reference's own origins, in both spellings a browser may use.
pub fn default_origins(ports: &[u16]) -> Vec<String> {
    ports
        .iter()
        .flat_map(|p| {
            [
                format!("http://localhost:{p}"),
                format!("http://127.0.0.1:{p}"),
            ]
        })
        .collect()
}

/// Lets exactly `origins` call the API from a browser (with a bearer token and an
/// `Idempotency-Key`); any other origin gets no CORS headers, so the browser refuses it.
pub fn cors(origins: &[String]) -> CorsLayer {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(list))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// Bound listeners of the two static servers.
pub struct Listeners {
    pub web: tokio::net::TcpListener,
    pub docs: tokio::net::TcpListener,
}

impl Listeners {
    pub async fn bind(settings: &WebSettings) -> Result<Self, RunError> {
        if !settings.web_dir.join("index.html").is_file() {
            tracing::warn!(
                dir = %settings.web_dir.display(),
                "WEB_DIR has no index.html: build the page first (cd web && npm ci && npm run build)"
            );
        }
        Ok(Self {
            web: tokio::net::TcpListener::bind(settings.web_addr).await?,
            docs: tokio::net::TcpListener::bind(settings.docs_addr).await?,
        })
    }
}

/// The page's runtime configuration: the ports of the API and the hub (the page joins them to
/// its own host name).
fn config_json(api: SocketAddr, ws: Option<SocketAddr>) -> String {
    serde_json::json!({
        "apiPort": api.port(),
        "wsPort": ws.map(|a| a.port()),
    })
    .to_string()
}

/// The router of the page (`index` = `index.html`) or the reference
/// (`index` = `reference/index.html`), both over the same built files.
pub fn router(
    dir: &std::path::Path,
    index: &str,
    api: SocketAddr,
    ws: Option<SocketAddr>,
) -> Router {
    let config = config_json(api, ws);
    Router::new()
        .route(
            "/config.json",
            get(move || {
                let body = config.clone();
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, "application/json"),
                            (header::CACHE_CONTROL, "no-store"),
                        ],
                        body,
                    )
                        .into_response()
                }
            }),
        )
        .route_service("/", ServeFile::new(dir.join(index)))
        .fallback_service(ServeDir::new(dir))
}

/// Where the two static servers listen, and the CORS layer the API gets.
pub struct Started {
    pub web_addr: SocketAddr,
    pub docs_addr: SocketAddr,
    pub cors: CorsLayer,
}

/// Binds and starts the page's and the reference's servers as tasks of `tasks`.
pub async fn start(
    tasks: &mut JoinSet<(&'static str, Result<(), RunError>)>,
    settings: WebSettings,
    limits: crate::serve::HttpLimits,
    api: SocketAddr,
    ws: Option<SocketAddr>,
    stop: &watch::Receiver<bool>,
) -> Result<Started, RunError> {
    let listeners = Listeners::bind(&settings).await?;
    let (web_addr, docs_addr) = (listeners.web.local_addr()?, listeners.docs.local_addr()?);
    let origins = settings
        .allowed_origins
        .clone()
        .unwrap_or_else(|| default_origins(&[web_addr.port(), docs_addr.port()]));
    tracing::info!(?origins, "CORS: origins allowed to call the API");
    let dir = settings.web_dir;
    for (name, listener, index) in [
        ("web", listeners.web, "index.html"),
        ("docs", listeners.docs, "reference/index.html"),
    ] {
        let app = router(&dir, index, api, ws);
        let rx = stop.clone();
        tasks.spawn(async move {
            let r = crate::serve::serve(listener, app, limits, rx).await;
            (name, r.map_err(RunError::from))
        });
    }
    Ok(Started {
        web_addr,
        docs_addr,
        cors: cors(&origins),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_or_name_the_variable() {
        assert_eq!(
            parse_origins("http://localhost:3001, https://x.example").expect("ok"),
            ["http://localhost:3001", "https://x.example"]
        );
        let err = parse_origins("localhost:3001").expect_err("no scheme");
        assert!(err.to_string().contains("CORS_ALLOWED_ORIGINS"));
        assert_eq!(
            default_origins(&[3001]),
            ["http://localhost:3001", "http://127.0.0.1:3001"]
        );
    }

    async fn preflight(origin: &str) -> axum::http::Response<axum::body::Body> {
        use tower::ServiceExt;
        let api = Router::new()
            .route("/api/v1/trade/open", axum::routing::post(|| async { "ok" }))
            .layer(cors(&default_origins(&[3001])));
        let req = axum::http::Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/v1/trade/open")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type,idempotency-key",
            )
            .body(axum::body::Body::empty())
            .expect("request");
        api.oneshot(req).await.expect("infallible")
    }

    #[tokio::test]
    async fn cors_allows_the_page_and_no_other_origin() {
        let ok = preflight("http://localhost:3001").await;
        assert_eq!(
            ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://localhost:3001"
        );
        let allowed = ok.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .expect("ascii");
        assert!(allowed.contains("idempotency-key") && allowed.contains("authorization"));
        let other = preflight("http://evil.example").await;
        assert!(
            other
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_page_server_tells_where_the_api_is() {
        use tower::ServiceExt;
        let dir = std::env::temp_dir().join(format!("web-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("reference")).expect("dir");
        std::fs::write(dir.join("index.html"), "page").expect("write");
        std::fs::write(dir.join("reference/index.html"), "reference").expect("write");
        let api: SocketAddr = "127.0.0.1:8000".parse().expect("addr");
        let ws: SocketAddr = "127.0.0.1:7070".parse().expect("addr");
        let get = |app: Router, uri: &str| {
            let req = axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .expect("request");
            async move {
                let res = app.oneshot(req).await.expect("infallible");
                let body = axum::body::to_bytes(res.into_body(), 1 << 16)
                    .await
                    .expect("body");
                String::from_utf8(body.to_vec()).expect("utf8")
            }
        };
        let page = router(&dir, "index.html", api, Some(ws));
        assert_eq!(get(page.clone(), "/").await, "page");
        assert_eq!(
            get(page, "/config.json").await,
            r#"{"apiPort":8000,"wsPort":7070}"#
        );
        let docs = router(&dir, "reference/index.html", api, Some(ws));
        assert_eq!(get(docs, "/").await, "reference");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
