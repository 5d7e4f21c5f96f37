#!/usr/bin/env bash
# Build TimescaleDB from a source archive against PostgreSQL 15 and install it into that server's
# library and extension directories. The build is cached outside the clone, so a machine builds once.
#
# Usage: scripts/timescaledb.sh ARCHIVE.tar.gz
#   The archive's sha256 must match ARCHIVE.tar.gz.sha256 beside it (or $TIMESCALEDB_SHA256).
#   PG_CONFIG       pg_config of the server to build for (default Debian's PostgreSQL 15)
#   ANJU_CACHE_DIR  where builds are kept (default /var/cache/anju as root, else ~/.cache/anju)
#   JOBS            parallel compile jobs (default: the number of cores)
# Needs cmake, a C compiler and the server's development files (Debian: postgresql-server-dev-15);
# installing needs write access to the server's directories (root).
set -euo pipefail

archive=${1:?usage: scripts/timescaledb.sh ARCHIVE.tar.gz}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ "$(id -u)" = 0 ]; then default_cache=/var/cache/anju; else default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/anju; fi
cache=${ANJU_CACHE_DIR:-$default_cache}
jobs=${JOBS:-$(nproc)}

die() { echo "timescaledb.sh: $*" >&2; exit 1; }

[ -f "$archive" ] || die "no archive at $archive"
if [ -n "${TIMESCALEDB_SHA256:-}" ]; then
  expected=$TIMESCALEDB_SHA256
elif [ -f "$archive.sha256" ]; then
  expected=$(cut -d' ' -f1 "$archive.sha256")
else
  die "no checksum: put ARCHIVE.sha256 beside $archive or set TIMESCALEDB_SHA256"
fi
actual=$(sha256sum "$archive" | cut -d' ' -f1)
[ "$actual" = "$expected" ] || die "$archive: sha256 $actual, expected $expected"

[ -x "$PG_CONFIG" ] || die "no pg_config at $PG_CONFIG (Debian: apt-get install postgresql-server-dev-15)"
[ -f "$("$PG_CONFIG" --includedir-server)/postgres.h" ] \
  || die "no server headers for $PG_CONFIG (Debian: apt-get install postgresql-server-dev-15)"
pg_major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
name=$(basename "$archive"); name=${name%.tar.gz}
key="$name-pg$pg_major-${actual:0:12}"
dir="$cache/timescaledb/$key"
stage="$dir/stage"  # what `make install` wrote, under DESTDIR; copied onto / to install
mkdir -p "$dir"

exec 9>"$dir/lock"
flock 9  # one build at a time per archive (parallel CI jobs on one machine)
if [ ! -f "$dir/complete" ]; then
  command -v cmake >/dev/null 2>&1 || die "cmake is needed to build TimescaleDB (apt-get install cmake)"
  started=$(date +%s)
  rm -rf "$dir/src" "$stage"
  mkdir -p "$dir/src"
  tar xzf "$archive" -C "$dir/src" --strip-components=1
  echo "building $name for PostgreSQL $pg_major in $dir (several minutes; once per machine)"
  # No telemetry (it phones home; OpenSSL is only for that), no regression or TAP test targets.
  cmake -S "$dir/src" -B "$dir/src/build" -DCMAKE_BUILD_TYPE=Release -DPG_CONFIG="$PG_CONFIG" \
    -DUSE_TELEMETRY=OFF -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_OPENSSL=OFF -DREGRESS_CHECKS=OFF \
    -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF -DENABLE_DEBUG_UTILS=OFF \
    -DGENERATE_DOWNGRADE_SCRIPT=OFF >"$dir/build.log" 2>&1 || { tail -30 "$dir/build.log" >&2; die "cmake failed"; }
  make -C "$dir/src/build" -j"$jobs" >>"$dir/build.log" 2>&1 || { tail -30 "$dir/build.log" >&2; die "build failed"; }
  make -C "$dir/src/build" install DESTDIR="$stage" >>"$dir/build.log" 2>&1 || die "staged install failed"
  rm -rf "$dir/src"
  echo "built in $(( $(date +%s) - started )) s" | tee -a "$dir/build.log"
  touch "$dir/complete"
fi

libdir=$("$PG_CONFIG" --pkglibdir)
extdir="$("$PG_CONFIG" --sharedir)/extension"
[ -w "$libdir" ] && [ -w "$extdir" ] || die "cannot write $libdir and $extdir: run as root"
cp -rT "$stage$libdir" "$libdir"
cp -rT "$stage$extdir" "$extdir"
version=$(sed -nE "s/^default_version *= *'([^']+)'.*/\1/p" "$extdir/timescaledb.control")
echo "TimescaleDB $version installed for PostgreSQL $pg_major ($libdir, $extdir)"
