//! The `migrate` binary (the one-shot job of compose and ECS): on an empty database it applies
//! every migration and exits 0, a second run changes nothing and exits 0, and a bad
//! `DATABASE_URL` is a failure that names it.

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| migrations::DEFAULT_DATABASE_URL.into())
}

fn migrate(url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_migrate"))
        .env("DATABASE_URL", url)
        .output()
        .expect("migrate runs")
}

#[tokio::test]
async fn migrate_applies_every_migration_once() {
    let admin: PgConnectOptions = admin_url().parse().expect("DATABASE_URL");
    let name = format!("test_migrate_{}", uuid::Uuid::new_v4().simple());
    let mut conn = admin.connect().await.expect("admin connection");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let url = admin.clone().database(&name).to_url_lossy().to_string();

    for _ in 0..2 {
        let out = migrate(&url);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut db = admin
        .clone()
        .database(&name)
        .connect()
        .await
        .expect("connect");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut db)
        .await
        .expect("migrations table");
    assert_eq!(applied, migrations::MIGRATOR.iter().count() as i64);
    for table in ["users", "positions", "candles", "engine_snapshots"] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&mut db)
            .await
            .expect("regclass");
        assert!(exists, "{table}");
    }
    db.close().await.expect("close");
    sqlx::query(&format!("DROP DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("drop database");
}

#[test]
fn a_bad_database_url_fails_naming_the_variable() {
    // (An unreachable server is retried for the pool's 30 s acquire timeout, then fails alike.)
    let out = migrate("postgres://[not-a-host/none");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
}
