#!/usr/bin/env python3
"""Checks local/compose.yaml against the repository (no Docker engine needed).

- every service has an image, or a build whose context, Dockerfile and target stage exist,
  the binaries the services run are built into the runtime image, and the Dockerfile builds
  only binaries that exist;
- published ports are unique, on 127.0.0.1, and the process listens on the container port;
- depends_on names existing services, waits for health only on services with a health check
  and for completion only on one-shot jobs; no cycles;
- every server has a health check; every service has a restart policy and cpu/memory limits;
  named volumes are declared;
- the environment of each platform service matches what its binary reads: no variable the
  code does not read (grep of the Rust sources), none of the settings it needs missing;
- .env.example lists exactly the variables compose interpolates, with the secrets empty;
- every long-lived platform service serves metrics (METRICS_ADDR, or the functions' HTTP port),
  and local/observability/prometheus.yml scrapes exactly those (service:port); the Prometheus
  and Grafana services mount the files that exist, and the dashboard is valid JSON.
Exit status 1 and one line per problem when anything is off.
"""
import json
import pathlib
import re
import sys

import yaml

LOCAL = pathlib.Path(__file__).resolve().parent
ROOT = LOCAL.parent
APP_IMAGE = "exness-rs:local"

# Where each binary's settings are read (crate sources), and the settings it cannot do
# without in a container (the local defaults point at 127.0.0.1 or are local-only secrets).
SOURCES = {
    "migrate": ["local/src/bin/migrate.rs", "migrations/src"],
    "engine": ["engine/src", "bus/src"],
    "exness-local": ["local/src", "functions/src", "engine/src", "bus/src", "migrations/src"],
    "persist": ["functions/src", "bus/src"],
    "alerts": ["functions/src", "bus/src"],
    "candle_ingest": ["functions/src", "bus/src"],
    "price-feed": ["bus/src"],
    "ws-hub": ["bus/src"],
}
NEEDED = {
    "migrate": {"DATABASE_URL"},
    "engine": {"NATS_URL", "DATABASE_URL", "MONGODB_URL", "ENGINE_ID"},
    "exness-local": {"HTTP_ADDR", "NATS_URL", "DATABASE_URL", "REDIS_URL", "JWT_SECRET"},
    "persist": {"NATS_URL", "DATABASE_URL"},
    "alerts": {"NATS_URL", "DATABASE_URL", "REDIS_URL"},
    "candle_ingest": {"NATS_URL", "DATABASE_URL"},
    "price-feed": {"NATS_URL", "REDIS_URL", "FEED_HEALTH_ADDR"},
    "ws-hub": {"WS_ADDR", "NATS_URL", "REDIS_URL", "JWT_SECRET"},
}
# One-shot or worker processes: they serve no port, so no health check is asked of them.
NOT_SERVERS = {"migrate", "engine", "persist", "candle_ingest", "alerts"}
# The address setting whose port each server listens on.
LISTEN = {"exness-local": "HTTP_ADDR", "ws-hub": "WS_ADDR", "price-feed": "FEED_HEALTH_ADDR"}
# Long-lived binaries: each must serve /metrics. The runner serves it on its HTTP port, the
# others on METRICS_ADDR (bus::process).
METRICS_ON_HTTP = {"exness-local": "HTTP_ADDR"}
LONG_LIVED = {"engine", "persist", "candle_ingest", "price-feed", "ws-hub", "exness-local"}
PROMETHEUS = LOCAL / "observability" / "prometheus.yml"
# Variables read by the libraries the binaries use (not by our sources).
LIBRARY_VARS = {"RUST_LOG"}

problems = []


def problem(text):
    problems.append(text)


def env_names_read(paths):
    """String literals that name environment variables in the non-test Rust sources."""
    names, prefixes = set(), set()
    for rel in paths:
        p = ROOT / rel
        files = [p] if p.is_file() else sorted(p.rglob("*.rs"))
        for f in files:
            text = f.read_text()
            text = text.split("#[cfg(test)]")[0]
            names.update(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)"', text))
            # Typed settings read through envy (bus::settings): a `Vars` struct's fields are
            # the lower-case names of its variables.
            for body in re.findall(r"struct Vars\s*\{(.*?)\}", text, re.S):
                names.update(f.upper() for f in re.findall(r"^\s*(?:pub\s+)?([a-z][a-z0-9_]*)\s*:", body, re.M))
            prefixes.update(re.findall(r'"([A-Z][A-Z0-9_]*_)\{', text))
    return names, prefixes


def is_read(name, read):
    names, prefixes = read
    return name in names or name in LIBRARY_VARS or any(name.startswith(p) for p in prefixes)


def dockerfile_stages(path):
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", path.read_text(), re.M | re.I))


def check_build(name, svc):
    build = svc.get("build")
    if build is None:
        if not svc.get("image"):
            problem(f"{name}: neither image nor build")
        return
    context = (LOCAL / build.get("context", ".")).resolve()
    dockerfile = context / build.get("dockerfile", "Dockerfile")
    if not context.is_dir():
        problem(f"{name}: build context {context} does not exist")
    if not dockerfile.is_file():
        problem(f"{name}: {dockerfile} does not exist")
        return
    target = build.get("target")
    if target and target not in dockerfile_stages(dockerfile):
        problem(f"{name}: Dockerfile has no stage {target}")


def check_ports(services):
    seen = {}
    for name, svc in services.items():
        for spec in svc.get("ports", []):
            m = re.fullmatch(r"127\.0\.0\.1:(\d+):(\d+)", str(spec))
            if not m:
                problem(f"{name}: port {spec} is not published as 127.0.0.1:HOST:CONTAINER")
                continue
            host, container = m.groups()
            if host in seen:
                problem(f"{name}: host port {host} also used by {seen[host]}")
            seen[host] = name
            command = (svc.get("command") or [None])[0]
            addr = svc.get("environment", {}).get(LISTEN.get(command, ""), "")
            if command in LISTEN and addr != f"0.0.0.0:{container}":
                problem(f"{name}: publishes {container} but {LISTEN[command]}={addr!r}")
    for port in ["8000", "7070", "3001", "3000", "5555"]:
        if port not in seen:
            problem(f"no service publishes port {port}")


def check_depends(services):
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            if dep not in services:
                problem(f"{name}: depends on unknown service {dep}")
                continue
            condition = (cond or {}).get("condition", "service_started")
            if condition == "service_healthy" and "healthcheck" not in services[dep]:
                problem(f"{name}: waits for {dep} to be healthy, but {dep} has no health check")
            if condition == "service_completed_successfully" and services[dep].get("restart") != "no":
                problem(f"{name}: waits for {dep} to complete, but {dep} restarts")
    state = {}

    def visit(n, path):
        if state.get(n) == "done":
            return
        if state.get(n) == "open":
            problem(f"depends_on cycle: {' -> '.join(path + [n])}")
            return
        state[n] = "open"
        for dep in (services[n].get("depends_on") or {}):
            if dep in services:
                visit(dep, path + [n])
        state[n] = "done"

    for n in services:
        visit(n, [])


def check_operations(doc, services):
    declared = set((doc.get("volumes") or {}).keys())
    for name, svc in services.items():
        command = (svc.get("command") or [None])[0]
        if command not in NOT_SERVERS and "healthcheck" not in svc:
            problem(f"{name}: a server without a health check")
        if "restart" not in svc:
            problem(f"{name}: no restart policy")
        limits = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        if not limits.get("cpus") or not limits.get("memory"):
            problem(f"{name}: no cpu/memory limits")
        for v in svc.get("volumes", []):
            source = str(v).split(":")[0]
            if not source.startswith((".", "/")) and source not in declared:
                problem(f"{name}: volume {source} is not declared")


def workspace_binaries():
    """Binary names of the workspace: [[bin]] names and src/bin/<name>.rs files."""
    names = set()
    for manifest in ROOT.glob("*/Cargo.toml"):
        names.update(re.findall(r'\[\[bin\]\]\s*name\s*=\s*"([^"]+)"', manifest.read_text()))
        names.update(p.stem for p in (manifest.parent / "src" / "bin").glob("*.rs"))
    return names


def check_environment(services, dockerfile):
    built = set(re.findall(r"--bin\s+(\S+)", dockerfile.read_text()))
    for bin_name in sorted(built - workspace_binaries()):
        problem(f"Dockerfile builds {bin_name}, which is no binary of the workspace")
    for name, svc in services.items():
        if svc.get("image") != APP_IMAGE:
            continue
        command = (svc.get("command") or [None])[0]
        if command not in SOURCES:
            problem(f"{name}: runs {command!r}, which this check does not know")
            continue
        if command not in built:
            problem(f"{name}: {command} is not built into the image (Dockerfile --bin)")
        read = env_names_read(SOURCES[command])
        env = set((svc.get("environment") or {}).keys())
        for var in sorted(env):
            if not is_read(var, read):
                problem(f"{name}: sets {var}, which {command} does not read")
        for var in sorted(NEEDED[command]):
            if not is_read(var, read):
                problem(f"check is stale: {command} no longer reads {var}")
            if var not in env:
                problem(f"{name}: {command} needs {var}, which is not set")


def check_env_example(raw):
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", raw))
    example = {}
    for line in (LOCAL / ".env.example").read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            example[m.group(1)] = m.group(2)
    for var in sorted(used - example.keys()):
        problem(f".env.example lacks {var}")
    for var in sorted(example.keys() - used):
        problem(f".env.example has {var}, which compose does not use")
    for var in sorted(set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", raw))):
        if example.get(var, "") != "":
            problem(f".env.example gives the required secret {var} a value")


def metrics_targets(services):
    """service:port of every platform service serving /metrics; a problem for those that don't."""
    targets = {}
    for name, svc in services.items():
        if svc.get("image") != APP_IMAGE:
            continue
        command = (svc.get("command") or [None])[0]
        env = svc.get("environment") or {}
        addr = env.get("METRICS_ADDR") or env.get(METRICS_ON_HTTP.get(command, ""), "")
        if not addr:
            if command in LONG_LIVED:
                problem(f"{name}: serves no metrics (set METRICS_ADDR)")
            continue
        host, _, port = str(addr).rpartition(":")
        if host != "0.0.0.0":
            problem(f"{name}: metrics on {addr}, which Prometheus cannot reach (use 0.0.0.0)")
        targets[name] = f"{name}:{port}"
    return targets


def check_scraped(services):
    expected = metrics_targets(services)
    if not PROMETHEUS.is_file():
        problem(f"{PROMETHEUS} does not exist")
        return
    config = yaml.safe_load(PROMETHEUS.read_text()) or {}
    scraped = set()
    for job in config.get("scrape_configs") or []:
        if job.get("metrics_path", "/metrics") != "/metrics":
            problem(f"prometheus job {job.get('job_name')}: scrapes {job['metrics_path']}, not /metrics")
        for static in job.get("static_configs") or []:
            scraped.update(static.get("targets") or [])
    for name, target in sorted(expected.items()):
        if target not in scraped:
            problem(f"{name}: serves metrics on {target}, which Prometheus does not scrape")
    for target in sorted(scraped - set(expected.values())):
        problem(f"Prometheus scrapes {target}, which no service serves metrics on")
    for name in ("prometheus", "grafana"):
        if name not in services:
            problem(f"no {name} service")
            continue
        for v in services[name].get("volumes", []):
            source = str(v).split(":")[0]
            if source.startswith(".") and not (LOCAL / source).exists():
                problem(f"{name}: mounts {source}, which does not exist")
    for dashboard in (LOCAL / "observability" / "grafana" / "dashboards").glob("*.json"):
        try:
            panels = json.loads(dashboard.read_text()).get("panels") or []
        except json.JSONDecodeError as e:
            problem(f"{dashboard.name}: not JSON: {e}")
            continue
        if not panels:
            problem(f"{dashboard.name}: no panels")


def main():
    raw = (LOCAL / "compose.yaml").read_text()
    doc = yaml.safe_load(raw)
    services = doc["services"]
    for name, svc in services.items():
        check_build(name, svc)
    check_ports(services)
    check_depends(services)
    check_operations(doc, services)
    check_environment(services, ROOT / "Dockerfile")
    check_env_example(raw)
    check_scraped(services)
    for p in problems:
        print(f"compose check: {p}")
    print(f"compose check: {len(services)} services, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
