#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis servers the test suite needs are installed and running on
# 127.0.0.1 (5432, trust auth, database `test`; 6379), and Debian's Chromium that the console's browser
# tests drive through Playwright (tests/console/; Playwright never downloads a browser of its own).
# Idempotent; needs root for installs.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if ! have pg_ctlcluster || ! have redis-server; then
  echo "services: installing postgresql and redis-server from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null
fi

if ! have chromium; then
  echo "services: installing chromium from Debian (console browser tests)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

pg_ready() { pg_isready -h 127.0.0.1 -p 5432 -q; }
pg_trusts() { psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1" >/dev/null 2>&1; }
if ! pg_ready || ! pg_trusts; then
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  conf=/etc/postgresql/$version/main
  # trust auth on loopback, as the tests expect (a throwaway CI database, never production)
  if ! grep -q "sluice-ci" "$conf/pg_hba.conf" 2>/dev/null; then
    sed -i '1i host all all 127.0.0.1/32 trust # sluice-ci\nhost all all ::1/128 trust # sluice-ci\nlocal all all trust # sluice-ci' "$conf/pg_hba.conf"
  fi
  if pg_ready; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  else
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  for _ in $(seq 1 50); do pg_ready && pg_trusts && break; sleep 0.2; done
fi
pg_ready || { echo "services: PostgreSQL did not start" >&2; exit 1; }
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "services: Redis did not start" >&2; exit 1; }
echo "services: PostgreSQL and Redis are up" >&2
