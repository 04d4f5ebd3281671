//! The process's metrics recorder (Prometheus text through `metrics-exporter-prometheus`),
//! installed once, and the scrape hooks that copy counters kept elsewhere (the hub's and the
//! feed's atomics) into it at scrape time, so their hot paths pay nothing extra.

use std::sync::{Mutex, OnceLock, PoisonError};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds): from half a millisecond (an engine batch) to 30 s (a replay).
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Size buckets (items per batch).
const SIZES: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

type Hook = Box<dyn Fn() + Send + Sync>;
static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Installs the Prometheus recorder as the process's global `metrics` recorder (once; later
/// calls return the same handle). Histograms named `*_seconds` or `*_size` get buckets;
/// handles registered before this call record nothing.
pub fn install_metrics() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZES));
        let builder = match builder {
            Ok(b) => b,
            // Only an empty bucket list is refused; ours are constants.
            Err(e) => unreachable!("constant buckets: {e}"),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        handle
    })
}

/// Runs `hook` before every scrape (to copy counters kept elsewhere into gauges/counters).
/// A hook of a part that stopped should hold a `Weak` and do nothing once it is gone.
pub fn on_scrape(hook: impl Fn() + Send + Sync + 'static) {
    HOOKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Box::new(hook));
}

/// The Prometheus text exposition of every metric of this process.
pub fn render_metrics() -> String {
    let handle = install_metrics();
    for hook in HOOKS.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        hook();
    }
    handle.run_upkeep();
    handle.render()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counters_and_histograms_render_as_prometheus_text() {
        super::install_metrics();
        let counter = metrics::counter!("test_things_total", "kind" => "a");
        counter.increment(3);
        metrics::histogram!("test_apply_seconds").record(0.002);
        super::on_scrape(|| metrics::gauge!("test_hooked").set(7.0));
        let text = super::render_metrics();
        assert!(text.contains("test_things_total{kind=\"a\"} 3"), "{text}");
        assert!(
            text.contains("test_apply_seconds_bucket{le=\"0.0025\"} 1"),
            "{text}"
        );
        assert!(text.contains("test_hooked 7"), "{text}");
    }
}
