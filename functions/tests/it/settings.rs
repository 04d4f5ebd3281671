//! The functions' settings: a bad value stops the start with an error naming its variable,
//! and every Lambda binary refuses to start without a strong `JWT_SECRET` outside
//! `APP_ENV=local` (before it touches NATS, PostgreSQL or the Lambda runtime).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use functions::Settings;
use functions::settings::{DEV_JWT_SECRET, Env};

const STRONG: &str = "0123456789abcdef0123456789abcdef";

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs.iter().copied())
}

#[test]
fn a_bad_value_names_its_variable() {
    for (name, value) in [
        ("JWT_TTL_SECS", "abc"),
        ("JWT_TTL_SECS", "0"),
        ("ENGINE_TIMEOUT_MS", "-5"),
        ("BODY_LIMIT_BYTES", "16k"),
        ("DB_MAX_CONNECTIONS", "99999999999"),
        ("DB_MAX_CONNECTIONS", "0"),
        ("ENGINE_PREFIX", "a/b"),
    ] {
        let err = Settings::from_vars(&env(&[("JWT_SECRET", STRONG), (name, value)]))
            .err()
            .unwrap_or_else(|| panic!("{name}={value} accepted"));
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    let s = Settings::from_vars(&env(&[
        ("JWT_SECRET", STRONG),
        ("JWT_TTL_SECS", "60"),
        ("ENGINE_PREFIX", "t_1-x"),
        ("BODY_LIMIT_BYTES", ""),
    ]))
    .expect("reads");
    assert_eq!(s.token_ttl, Duration::from_secs(60));
    assert_eq!(s.bus_prefix, "t_1-x");
    assert_eq!(
        s.body_limit,
        Settings::default().body_limit,
        "blank is unset"
    );
}

#[test]
fn the_secret_is_required_and_strong_unless_in_local_mode() {
    for bad in [
        env(&[]),
        env(&[("JWT_SECRET", "")]),
        env(&[("JWT_SECRET", "0123456789abcdef0123456789abcde")]), // 31 bytes
        env(&[("JWT_SECRET", DEV_JWT_SECRET)]),
        env(&[("APP_ENV", "staging"), ("JWT_SECRET", STRONG)]),
    ] {
        let err = Settings::from_vars(&bad).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("JWT_SECRET") || text.contains("APP_ENV"),
            "{text}"
        );
        assert!(
            !text.contains("0123456789"),
            "the secret is never shown: {text}"
        );
    }
    let s = Settings::from_vars(&env(&[("JWT_SECRET", STRONG)])).expect("strong key");
    assert_eq!(s.jwt_secret, STRONG);
    let s = Settings::from_vars(&env(&[("APP_ENV", "local")])).expect("local mode");
    assert_eq!(s.jwt_secret, DEV_JWT_SECRET);
    let s = Settings::from_vars(&env(&[("APP_ENV", "local"), ("JWT_SECRET", "short")]))
        .expect("local mode takes any key");
    assert_eq!(s.jwt_secret, "short");
}

/// Runs a binary of this package with `vars` over an environment without `APP_ENV` and
/// `JWT_SECRET`; its exit status and output (it must exit within 20 s).
fn run(bin: &str, vars: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut cmd = Command::new(bin);
    cmd.env_remove("APP_ENV")
        .env_remove("JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{bin} kept running with {vars:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status, text)
}

#[test]
fn every_lambda_refuses_to_start_without_a_strong_secret() {
    for bin in [
        env!("CARGO_BIN_EXE_signup"),
        env!("CARGO_BIN_EXE_signin"),
        env!("CARGO_BIN_EXE_balance"),
        env!("CARGO_BIN_EXE_assets"),
        env!("CARGO_BIN_EXE_trade"),
        env!("CARGO_BIN_EXE_candles"),
        env!("CARGO_BIN_EXE_alerts_api"),
        env!("CARGO_BIN_EXE_analytics"),
    ] {
        for vars in [&[][..], &[("JWT_SECRET", "short")][..]] {
            let (status, output) = run(bin, vars);
            assert!(!status.success(), "{bin} {vars:?}: {output}");
            assert!(output.contains("JWT_SECRET"), "{bin} {vars:?}: {output}");
        }
    }
    let (status, output) = run(
        env!("CARGO_BIN_EXE_trade"),
        &[("JWT_SECRET", STRONG), ("ENGINE_TIMEOUT_MS", "soon")],
    );
    assert!(!status.success());
    assert!(output.contains("ENGINE_TIMEOUT_MS"), "{output}");
}

#[test]
fn candle_ingest_and_the_alerts_worker_need_no_secret_but_refuse_bad_values() {
    for bin in [
        env!("CARGO_BIN_EXE_candle_ingest"),
        env!("CARGO_BIN_EXE_alerts"),
    ] {
        let (status, output) = run(bin, &[("DB_MAX_CONNECTIONS", "lots")]);
        assert!(!status.success(), "{bin}");
        assert!(output.contains("DB_MAX_CONNECTIONS"), "{bin}: {output}");
        assert!(!output.contains("JWT_SECRET"), "{bin}: {output}");
    }
}
