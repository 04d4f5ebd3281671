# Sourced by local/up and local/test-web.sh: Node.js for building the web page (web/), and
# Chromium for its browser test. Both come from the OS packages when missing (Debian/Ubuntu
# apt-get); nothing downloads a browser or a toolchain of its own.

apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "error: $* missing and no apt-get to install it; install it with your package manager" >&2
    return 1
  fi
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# Node.js 18.18 or newer with npm (Debian 12's nodejs is 18.19; every tool in web/ runs on it).
ensure_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "installing Node.js and npm from the OS packages" >&2
    apt_install nodejs npm
  fi
  local major minor
  IFS=. read -r major minor _ <<<"$(node --version | tr -d v)"
  if [ "$major" -lt 18 ] || { [ "$major" -eq 18 ] && [ "$minor" -lt 18 ]; }; then
    echo "error: web/ needs Node.js 18.18 or newer; this is $(node --version)" >&2
    return 1
  fi
}

# Installs web/'s locked dependencies (when the lockfile changed) and builds web/dist.
build_web() {
  ensure_node
  (
    cd web
    if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
      npm ci --no-audit --no-fund --loglevel=error
    fi
    npm run --silent build -- --logLevel warn
  )
}

ensure_chromium() {
  if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    echo "installing Chromium from the OS packages (for the browser test)" >&2
    apt_install chromium
  fi
}
