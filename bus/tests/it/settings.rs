//! The hub's and the price feed's settings: a bad value stops the start with an error naming
//! its variable, and the signing key is required and strong outside local mode, also for the
//! `ws-hub` process itself; outside local mode the feed takes real prices only (`binance` by
//! default, `auto` and `simulated` refused), also for the `price-feed` process itself.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bus::feed::{FeedSettings, SourceMode};
use bus::hub::HubSettings;
use bus::settings::{DEV_JWT_SECRET, Env};

const STRONG: &str = "0123456789abcdef0123456789abcdef";

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs.iter().copied())
}

#[test]
fn a_bad_hub_or_feed_value_names_its_variable() {
    for (name, value) in [
        ("WS_MAX_CONNECTIONS", "many"),
        ("WS_MAX_CONNECTIONS", "0"),
        ("WS_MAX_BEHIND", "-1"),
        ("WS_WRITE_TIMEOUT_MS", "5s"),
        ("WS_FANOUT_SHARDS", "0"),
        ("WS_FANOUT_SHARDS", "two"),
        ("ENGINE_PREFIX", "a.b"),
    ] {
        let err = HubSettings::from_vars(&env(&[("JWT_SECRET", STRONG), (name, value)]))
            .err()
            .unwrap_or_else(|| panic!("{name}={value} accepted"));
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    for (name, value) in [
        ("PRICE_SOURCE", "bogus"),
        ("TICK_INTERVAL_MS", "fast"),
        ("FEED_STALE_AFTER_MS", "1e4"),
        ("FEED_FALLBACK_AFTER", "-3"),
        ("MARKUP_BPS", "five"),
        ("MARKUP_BPS_ETH", "-1"),
        ("PRICE_DECIMALS_SOL", "two"),
    ] {
        let err = FeedSettings::from_vars(&env(&[(name, value)]))
            .err()
            .unwrap_or_else(|| panic!("{name}={value} accepted"));
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    // Good values are read, unset and blank ones keep their defaults.
    let hub = HubSettings::from_vars(&env(&[
        ("JWT_SECRET", STRONG),
        ("WS_MAX_CONNECTIONS", "7"),
        ("WS_WRITE_TIMEOUT_MS", " "),
        ("WS_FANOUT_SHARDS", "3"),
    ]))
    .expect("reads");
    assert_eq!((hub.max_connections, hub.fanout_shards), (7, 3));
    assert_eq!(hub.write_timeout, HubSettings::default().write_timeout);
    let feed = FeedSettings::from_vars(&env(&[
        ("APP_ENV", "local"),
        ("PRICE_SOURCE", "simulated"),
        ("FEED_HEALTH_ADDR", "127.0.0.1:0"),
        ("FEED_REFRESH_MS", "250"),
    ]))
    .expect("reads");
    assert_eq!(feed.source, SourceMode::Simulated);
    assert_eq!(feed.health_addr, "127.0.0.1:0");
    assert_eq!(feed.refresh_interval, Duration::from_millis(250));
}

#[test]
fn outside_local_mode_the_feed_takes_real_prices_only() {
    for mode in [&[][..], &[("APP_ENV", "production")][..]] {
        let feed = FeedSettings::from_vars(&env(mode)).expect("reads");
        assert_eq!(feed.source, SourceMode::Binance, "the default in {mode:?}");
        for source in ["auto", "simulated"] {
            let vars: Vec<_> = mode
                .iter()
                .copied()
                .chain([("PRICE_SOURCE", source)])
                .collect();
            let err = FeedSettings::from_vars(&env(&vars))
                .err()
                .unwrap_or_else(|| panic!("PRICE_SOURCE={source} accepted in {mode:?}"));
            assert!(err.to_string().contains("PRICE_SOURCE"), "{err}");
            assert!(err.to_string().contains("local mode"), "{err}");
        }
        let binance = FeedSettings::from_vars(&env(&[("PRICE_SOURCE", "binance")]));
        assert_eq!(binance.expect("reads").source, SourceMode::Binance);
    }
    // Local mode keeps the offline fallback by default and may pick any source.
    let local = FeedSettings::from_vars(&env(&[("APP_ENV", "local")])).expect("reads");
    assert_eq!(local.source, SourceMode::Auto);
    for (source, mode) in [
        ("auto", SourceMode::Auto),
        ("simulated", SourceMode::Simulated),
        ("binance", SourceMode::Binance),
    ] {
        let s = FeedSettings::from_vars(&env(&[("APP_ENV", "local"), ("PRICE_SOURCE", source)]));
        assert_eq!(s.expect("reads").source, mode);
    }
}

/// Runs `price-feed` with `vars` (and no `APP_ENV` unless given); returns its exit status and
/// output, or fails if it is still running after 20 s.
fn run_feed(vars: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_price-feed"));
    cmd.env_remove("APP_ENV")
        .env_remove("PRICE_SOURCE")
        .env("FEED_HEALTH_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("price-feed starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("price-feed kept running with {vars:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status, text)
}

#[test]
fn the_price_feed_process_refuses_simulated_sources_outside_local_mode() {
    for source in ["auto", "simulated"] {
        let (status, output) = run_feed(&[("PRICE_SOURCE", source)]);
        assert!(!status.success(), "{source}: {output}");
        assert!(output.contains("PRICE_SOURCE"), "{source}: {output}");
    }
}

#[test]
fn the_hub_needs_a_strong_secret_unless_in_local_mode() {
    for bad in [
        env(&[]),
        env(&[("JWT_SECRET", "")]),
        env(&[("JWT_SECRET", "too-short")]),
        env(&[("APP_ENV", "production"), ("JWT_SECRET", DEV_JWT_SECRET)]),
    ] {
        let err = HubSettings::from_vars(&bad).expect_err("refused");
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    }
    let strong = HubSettings::from_vars(&env(&[("JWT_SECRET", STRONG)])).expect("strong");
    assert_eq!(strong.jwt_secret, STRONG);
    let local = HubSettings::from_vars(&env(&[("APP_ENV", "local")])).expect("local mode");
    assert_eq!(local.jwt_secret, DEV_JWT_SECRET);
}

/// Runs `ws-hub` with `vars` (and neither `APP_ENV` nor `JWT_SECRET` unless given); returns its
/// exit status and output, or fails if it is still running after 20 s.
fn run_hub(vars: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ws-hub"));
    cmd.env_remove("APP_ENV")
        .env_remove("JWT_SECRET")
        .env("WS_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("ws-hub starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ws-hub kept running with {vars:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status, text)
}

#[test]
fn the_ws_hub_process_refuses_to_start_without_a_strong_secret() {
    for vars in [&[][..], &[("JWT_SECRET", "short")][..]] {
        let (status, output) = run_hub(vars);
        assert!(!status.success(), "{vars:?}: {output}");
        assert!(output.contains("JWT_SECRET"), "{vars:?}: {output}");
    }
    let (status, output) = run_hub(&[("JWT_SECRET", STRONG), ("WS_MAX_BEHIND", "lots")]);
    assert!(!status.success());
    assert!(output.contains("WS_MAX_BEHIND"), "{output}");
}
