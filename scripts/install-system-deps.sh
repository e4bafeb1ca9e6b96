#!/usr/bin/env bash
# Installs the Debian packages the test suite (and, with --bench, the benchmarks) use, where missing.
set -euo pipefail
need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v psql >/dev/null || need+=(postgresql-client-15)
command -v openssl >/dev/null || need+=(openssl)
# tests/integration/test_client_scenarios.py: pgJDBC (Debian's jar) run by a Java runtime, and node-postgres.
[ -e /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
command -v java >/dev/null || need+=(default-jre-headless)
{ command -v node >/dev/null && command -v npm >/dev/null; } || need+=(nodejs npm)
# tests/relay/test_ha_manager.py: pg_auto_failover as the HA manager (pg_autoctl, and the monitor's extension).
[ -x /usr/bin/pg_autoctl ] || need+=(pg-auto-failover-cli)
[ -e /usr/share/postgresql/15/extension/pgautofailover.control ] || need+=(postgresql-15-auto-failover)
if [ "${1:-}" = "--bench" ]; then
  # bench/connect_rate.py: PgBouncer (in /usr/sbin, often not on a non-root PATH) and pgbench
  # (Debian 12 ships it with postgresql-15; postgresql-contrib only if it is still missing).
  { [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null; } || need+=(pgbouncer)
  { [ -x /usr/lib/postgresql/15/bin/pgbench ] || command -v pgbench >/dev/null; } || need+=(postgresql-contrib)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Do not let package scripts start services: the tests start their own servers.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
