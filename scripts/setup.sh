# Sourced by scripts/test.sh and scripts/run.sh: creates the virtualenv and installs the
# project with its extras. Idempotent; a second run only checks.
VENV=${P2PENERGY_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
"$VENV/bin/python" -m pip install -q -e ".[test,postgres]"
export PATH="$PWD/$VENV/bin:$PATH"
# anvil (Foundry's local EVM node, from the npm package) for the ledger's integration tests.
ANVIL_VERSION=1.7.1
ANVIL="$PWD/.tools/anvil/node_modules/.bin/anvil"
if ! { [ -x "$ANVIL" ] && "$ANVIL" --version 2>/dev/null | grep -q "$ANVIL_VERSION"; }; then
    mkdir -p .tools/anvil
    npm install --silent --no-audit --no-fund --prefix .tools/anvil "@foundry-rs/anvil@$ANVIL_VERSION" >/dev/null
fi
# the platform binary itself (the .bin/anvil wrapper is a node script that would outlive a kill)
P2PENERGY_ANVIL=$(ls "$PWD"/.tools/anvil/node_modules/@foundry-rs/anvil-*/bin/anvil 2>/dev/null | head -n 1)
export P2PENERGY_ANVIL="${P2PENERGY_ANVIL:-$ANVIL}"
# Debian packages for the service's tests: headless Chromium (the dashboard test) and a
# PostgreSQL server (the journal on PostgreSQL). Installed only when missing; one apt-get update.
_missing=""
command -v chromium >/dev/null 2>&1 || _missing="$_missing chromium"
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || _missing="$_missing postgresql"
if [ -n "$_missing" ] && [ "$(id -u)" = "0" ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $_missing >/dev/null
fi
export P2PENERGY_CHROMIUM="$(command -v chromium || true)"
# A PostgreSQL cluster on loopback for the journal's PostgreSQL tests (Debian's packaged
# cluster, started if down; a role and database for the tests, created once).
if [ "$(id -u)" = "0" ] && command -v pg_lsclusters >/dev/null 2>&1; then
    _pg=$(pg_lsclusters -h | head -n 1)
    if [ -n "$_pg" ]; then
        read -r _pgver _pgname _pgport _pgstatus _pgrest <<< "$_pg"
        [ "$_pgstatus" = "online" ] || pg_ctlcluster "$_pgver" "$_pgname" start >/dev/null 2>&1 || true
        su postgres -c "psql -q -p $_pgport -tAc \"SELECT 1 FROM pg_roles WHERE rolname='p2penergy'\"" 2>/dev/null \
            | grep -q 1 || su postgres -c "psql -q -p $_pgport -c \"CREATE ROLE p2penergy LOGIN CREATEDB PASSWORD 'p2penergy'\"" >/dev/null
        export P2PENERGY_TEST_PG_URL="postgresql+psycopg://p2penergy:p2penergy@127.0.0.1:$_pgport/postgres"
    fi
fi
