#!/usr/bin/env bash
# Ensures the local PostgreSQL and Redis that loanflow's demo and tests use are
# running: starts them when they are installed but stopped, and says what to
# do when they are missing. Set DATABASE_URL / REDIS_URL to use other servers;
# this script then leaves them alone.
set -euo pipefail

say() { printf 'services: %s\n' "$*" >&2; }

local_url() { # true when the URL is unset or points at this machine
  [ -z "${1:-}" ] || [[ "$1" == *"@127.0.0.1"* || "$1" == *"@localhost"* || "$1" == *"//127.0.0.1"* || "$1" == *"//localhost"* ]]
}

wait_for() { # wait_for NAME CMD...: up to 20 s
  local name=$1; shift
  for _ in $(seq 1 40); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  say "$name did not come up within 20 s"; return 1
}

pg_up() {
  if command -v pg_isready >/dev/null 2>&1; then pg_isready -q -h 127.0.0.1 -p 5432
  else (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; fi
}

redis_up() {
  if command -v redis-cli >/dev/null 2>&1; then [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
  else (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; fi
}

if local_url "${DATABASE_URL:-}${LOANFLOW_TEST_DATABASE_URL:-}"; then
  if ! pg_up; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      say "PostgreSQL is stopped; starting it"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
      wait_for PostgreSQL pg_up
    else
      say "PostgreSQL is not installed here. Install it (Debian: apt-get install postgresql), or set DATABASE_URL and LOANFLOW_TEST_DATABASE_URL to a reachable server, or use 'docker compose up'."
      exit 1
    fi
  fi
fi

if local_url "${REDIS_URL:-}${LOANFLOW_TEST_REDIS_URL:-}"; then
  if ! redis_up; then
    if command -v redis-server >/dev/null 2>&1; then
      say "Redis is stopped; starting it"
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
      wait_for Redis redis_up
    else
      say "Redis is not installed here. Install it (Debian: apt-get install redis-server), or set REDIS_URL and LOANFLOW_TEST_REDIS_URL to a reachable server, or use 'docker compose up'."
      exit 1
    fi
  fi
fi
say "PostgreSQL and Redis are up"
