#!/usr/bin/env bash
# Makes sure NATS (with JetStream), PostgreSQL and Redis run on their default local ports:
# installs them from the OS packages when missing and starts them when stopped.
# Sourced by local/up and local/test; safe to run again (it only does what is missing).
set -euo pipefail

have_port() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do
    have_port "$port" && return 0
    sleep 0.5
  done
  echo "error: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]} from the OS packages"
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

pg_reachable() { psql -h 127.0.0.1 -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  have_port 5432 && pg_reachable && return 0
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if ! have_port 5432; then
    sudo_if_needed pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_port 5432 PostgreSQL
  fi
  # Local development and tests use trust auth for the postgres user over TCP.
  if ! pg_reachable; then
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    # pg_hba.conf is read top-down and the first match wins, so the rule goes first.
    sudo_if_needed sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    sudo_if_needed pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
}

ensure_redis() {
  have_port 6379 && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_port 6379 Redis
}

ensure_nats() {
  have_port 4222 && return 0
  [ -x /usr/sbin/nats-server ] || apt_install nats-server
  sudo_if_needed mkdir -p /var/lib/nats-server
  sudo_if_needed start-stop-daemon --start --oknodo --background \
    --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server
  wait_port 4222 NATS
}

ensure_services() {
  command -v psql >/dev/null || apt_install postgresql-client
  ensure_postgres
  ensure_redis
  ensure_nats
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  ensure_services
  echo "NATS 127.0.0.1:4222, PostgreSQL 127.0.0.1:5432, Redis 127.0.0.1:6379: running"
fi
