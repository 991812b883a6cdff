#!/bin/sh
# Starts PostgreSQL the way stack.yml asks (runs as the postgres user):
#   PGDATA                   where the cluster lives; made on the first start
#   POSTGRES_PASSWORD_FILE   the superuser postgres' password (a Swarm secret)
#   POSTGRES_APP_DATABASES   "polise other": for each name, a role and a database of that name owned by it,
#                            the role's password read from /run/secrets/<name>_db_password. Applied on
#                            every start, so a rotated secret takes effect at the next restart.
# No password is ever put on a command line: psql reads it from the secret file itself.
set -euf   # -f: a name in POSTGRES_APP_DATABASES is never a glob
fail() { echo "postgres: $*" >&2; exit 1; }
: "${PGDATA:?PGDATA is not set: stack.yml sets it}"
pw=${POSTGRES_PASSWORD_FILE:-}
[ -n "$pw" ] || fail "POSTGRES_PASSWORD_FILE is not set: mount the superuser's password as a Swarm secret"
[ -r "$pw" ] && [ -s "$pw" ] || fail "POSTGRES_PASSWORD_FILE=$pw is missing or empty: add that secret to the service"
for name in ${POSTGRES_APP_DATABASES:-}; do
  case $name in   # a pattern, not echo | grep: dash's echo would read a \c in the name and cut it there
    ''|[!a-z_]*|*[!a-z0-9_]*) fail "POSTGRES_APP_DATABASES: '$name' is not a database name (lower-case letters, digits, _)" ;;
  esac
  [ ${#name} -le 63 ] || fail "POSTGRES_APP_DATABASES: '$name' is longer than 63 characters"
  case $name in postgres|template0|template1|public|pg_*)
    fail "POSTGRES_APP_DATABASES: '$name' is PostgreSQL's own; name the app's database after the app" ;;
  esac
  [ -r "/run/secrets/${name}_db_password" ] && [ -s "/run/secrets/${name}_db_password" ] \
    || fail "POSTGRES_APP_DATABASES names $name: add the secret ${name}_db_password (not empty) to the service"
done

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "postgres: a new cluster in $PGDATA"
  initdb --username=postgres --pwfile="$pw" --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi

if [ -n "${POSTGRES_APP_DATABASES:-}" ]; then
  # a server on a private socket only, for the roles and databases; then the real one. It logs no failed
  # statement (that text would hold a password), and is stopped if a step fails.
  sock=$(mktemp -d)
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k $sock -c log_min_error_statement=panic" -w -s start
  trap 'pg_ctl -D "$PGDATA" -m fast -w -s stop; rm -rf "$sock"' EXIT
  for name in $POSTGRES_APP_DATABASES; do
    psql -h "$sock" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1 -v name="$name" <<SQL
\set pw \`cat /run/secrets/${name}_db_password\`
SELECT format('CREATE ROLE %I LOGIN', :'name') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'name', btrim(:'pw', E' \t\r\n')) \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SQL
    echo "postgres: role and database $name ready"
  done
  pg_ctl -D "$PGDATA" -m fast -w -s stop
  trap - EXIT
  rm -rf "$sock"
fi
exec postgres -D "$PGDATA"
