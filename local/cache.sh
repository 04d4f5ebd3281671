#!/usr/bin/env bash
# Where builds and tools are kept between runs, shared by every clone of the project on this
# machine (as a CI cache would keep them): cargo's target dir and the Python virtualenvs of the
# test scripts. Sourced by local/up, local/test and the test scripts it calls.
#
#   EXNESS_CACHE       the folder, default ${XDG_CACHE_HOME:-~/.cache}/exness-rs
#   CARGO_TARGET_DIR   when set, it wins; `CARGO_TARGET_DIR=target local/test` opts out of the
#                      shared target dir (each clone then compiles everything once)
EXNESS_CACHE="${EXNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/exness-rs}"
export EXNESS_CACHE
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$EXNESS_CACHE/target}"

# cached_venv NAME REQUIREMENTS: a virtualenv at $EXNESS_CACHE/venv/NAME holding exactly the
# pinned REQUIREMENTS, rebuilt only when that file changes. Prints its path.
cached_venv() {
  local venv="$EXNESS_CACHE/venv/$1" reqs=$2 want
  want=$(sha256sum "$reqs" | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null && command -v apt-get >/dev/null; then
      apt-get install -y -qq python3-venv >/dev/null # Debian's python3 ships venv separately
    fi
    mkdir -p "$EXNESS_CACHE/venv"
    python3 -m venv --clear "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs" >&2
    echo "$want" > "$venv/.requirements.sha256"
  fi
  echo "$venv"
}
