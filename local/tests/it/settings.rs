//! The runner's settings, all read through the one settings layer: a bad value of any part
//! (runner, engine, functions, feed, hub) stops the start with an error naming the variable;
//! `JWT_SECRET` is required and strong unless `APP_ENV=local`, and then the HTTP functions and
//! the hub share it. The `exness-local` process itself refuses to start without one.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bus::settings::{DEV_JWT_SECRET, Env};
use local::RunnerSettings;

const STRONG: &str = "0123456789abcdef0123456789abcdef";

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs.iter().copied())
}

#[test]
fn a_bad_value_of_any_part_names_its_variable() {
    for (name, value) in [
        ("HTTP_ADDR", "localhost"),
        ("MARKET_DATA", "maybe"),
        ("ALERTS", "sometimes"),
        ("PRICE_DECIMALS_BTC", "x"),
        ("ENGINE_BATCH", "many"),
        ("JWT_TTL_SECS", "abc"),
        ("WS_MAX_CONNECTIONS", "lots"),
        ("TICK_INTERVAL_MS", "1.5"),
    ] {
        let err = RunnerSettings::from_vars(&env(&[("JWT_SECRET", STRONG), (name, value)]))
            .err()
            .unwrap_or_else(|| panic!("{name}={value} accepted"));
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[test]
fn the_secret_is_required_outside_local_mode_and_shared_in_it() {
    for bad in [env(&[]), env(&[("JWT_SECRET", "short")])] {
        let err = RunnerSettings::from_vars(&bad).expect_err("refused");
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }
    let s = RunnerSettings::from_vars(&env(&[("APP_ENV", "local")])).expect("local mode");
    assert_eq!(s.functions.jwt_secret, DEV_JWT_SECRET);
    let hub = s.market.and_then(|m| m.hub).expect("the hub runs");
    assert_eq!(hub.jwt_secret, DEV_JWT_SECRET);
    assert_eq!(hub.bind, "127.0.0.1:7070");
    let s = RunnerSettings::from_vars(&env(&[("JWT_SECRET", STRONG), ("MARKET_DATA", "off")]))
        .expect("strong key");
    assert_eq!(s.functions.jwt_secret, STRONG);
    assert!(s.market.is_none());
}

#[test]
fn the_runner_process_refuses_to_start_without_a_secret() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exness-local"))
        .env_remove("APP_ENV")
        .env_remove("JWT_SECRET")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("WS_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the runner started without a JWT_SECRET");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("JWT_SECRET"), "{text}");
}
