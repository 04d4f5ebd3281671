//! The platform's PostgreSQL schema: the SQL files in `migrations/sql`, applied by one shared
//! migrator (the local runner at start, every test on its own fresh database).

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

/// Every migration of the platform, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./sql");

/// The local default: the trust-auth `postgres` user on 127.0.0.1.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Connects to `url` and applies every pending migration.
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .connect(url)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// A fresh, migrated database with a random name, for one test; dropped (its connections
/// ended) when the value is, also when the test panics, so nothing is left on the server.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    admin: PgConnectOptions,
}

impl TestDatabase {
    /// Creates `test_<random>` on the server of `DATABASE_URL` (or the local default).
    pub async fn create() -> Result<Self, sqlx::Error> {
        let admin_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string());
        let admin_opts: PgConnectOptions = admin_url.parse()?;
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = admin_opts.connect().await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let opts = admin_opts.clone().database(&name);
        let url = opts.to_url_lossy().to_string();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        let db = Self {
            name,
            url,
            pool,
            admin: admin_opts,
        };
        MIGRATOR.run(&db.pool).await?;
        Ok(db)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // No async drop: a thread with a runtime of its own drops the database (`FORCE` ends
        // the pool's connections, which may belong to a runtime that is itself ending).
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = admin.connect().await.map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        let outcome = dropped.unwrap_or_else(|_| Err("the drop thread panicked".into()));
        if let Err(e) = outcome {
            eprintln!("test database {} was not dropped: {e}", self.name);
        }
    }
}
