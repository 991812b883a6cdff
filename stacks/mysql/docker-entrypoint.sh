#!/bin/sh
# Starts MariaDB the way stack.yml asks (runs as the mysql user):
#   MYSQL_ROOT_PASSWORD_FILE  root's password (a Swarm secret): root may sign in over the db network with it
#   MYSQL_APP_DATABASES       "shop other": for each name, a database and a user of that name with every
#                             privilege on it and none elsewhere, the user's password read from
#                             /run/secrets/<name>_db_password. Applied on every start, so a rotated secret
#                             takes effect at the next restart.
# No password is ever put on a command line: the SQL reaches the client on its standard input.
set -euf   # -f: a name in MYSQL_APP_DATABASES is never a glob
fail() { echo "mysql: $*" >&2; exit 1; }
datadir=/var/lib/mysql
pw=${MYSQL_ROOT_PASSWORD_FILE:-}
[ -n "$pw" ] || fail "MYSQL_ROOT_PASSWORD_FILE is not set: mount root's password as a Swarm secret"
[ -r "$pw" ] && [ -s "$pw" ] || fail "MYSQL_ROOT_PASSWORD_FILE=$pw is missing or empty: add that secret to the service"
for name in ${MYSQL_APP_DATABASES:-}; do
  case $name in   # a pattern, not echo | grep: dash's echo would read a \c in the name and cut it there
    ''|[!a-z_]*|*[!a-z0-9_]*) fail "MYSQL_APP_DATABASES: '$name' is not a database name (lower-case letters, digits, _)" ;;
  esac
  [ ${#name} -le 64 ] || fail "MYSQL_APP_DATABASES: '$name' is longer than 64 characters"
  case $name in mysql|information_schema|performance_schema|sys|root|mariadb.sys)
    fail "MYSQL_APP_DATABASES: '$name' is the server's own; name the app's database after the app" ;;
  esac
  [ -r "/run/secrets/${name}_db_password" ] && [ -s "/run/secrets/${name}_db_password" ] \
    || fail "MYSQL_APP_DATABASES names $name: add the secret ${name}_db_password (not empty) to the service"
done

# a secret's value as an SQL string: trailing newlines dropped, quotes doubled; the session below turns
# backslash escapes off, so a backslash is itself and a quote can only be doubled
literal() { printf "'%s'" "$(sed -e "s/'/''/g" "$1")"; }

if [ ! -d "$datadir/mysql" ]; then
  echo "mysql: a new data directory in $datadir"
  # root and mysql@localhost sign in by the socket only, as the OS user mysql (this entrypoint)
  mariadb-install-db --datadir="$datadir" --auth-root-authentication-method=socket --auth-root-socket-user=mysql \
    --skip-test-db >/dev/null
fi

# a server on a private socket only, for the accounts and databases; then the real one
run=$(mktemp -d)
mariadbd --datadir="$datadir" --skip-networking --socket="$run/s" --pid-file="$run/pid" --log-error="$run/log" &
for _ in $(seq 60); do mariadb-admin --socket="$run/s" -u mysql ping >/dev/null 2>&1 && break; sleep 0.5; done
mariadb-admin --socket="$run/s" -u mysql ping >/dev/null 2>&1 || { cat "$run/log" >&2; fail "the server did not start"; }
{   # printf, not echo: dash's echo would read backslashes of a password as escapes
  printf '%s\n' "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES');"
  root=$(literal "$pw")
  printf '%s\n' "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY $root;" \
    "ALTER USER 'root'@'%' IDENTIFIED BY $root;" "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
  for name in ${MYSQL_APP_DATABASES:-}; do
    secret=$(literal "/run/secrets/${name}_db_password")
    # in a grant, _ matches any one character: escaped, so app_1 gets app_1 and not app01 too
    grant=$(printf '%s' "$name" | sed 's/_/\\_/g')
    printf '%s\n' "CREATE DATABASE IF NOT EXISTS \`$name\`;" \
      "CREATE USER IF NOT EXISTS '$name'@'%' IDENTIFIED BY $secret;" \
      "ALTER USER '$name'@'%' IDENTIFIED BY $secret;" "GRANT ALL PRIVILEGES ON \`$grant\`.* TO '$name'@'%';"
  done
} | mariadb --socket="$run/s" -u mysql --batch --default-character-set=utf8mb4 || { mariadb-admin --socket="$run/s" -u mysql shutdown; fail "the accounts could not be set up"; }
for name in ${MYSQL_APP_DATABASES:-}; do echo "mysql: user and database $name ready"; done
mariadb-admin --socket="$run/s" -u mysql shutdown
rm -rf "$run"
exec mariadbd --datadir="$datadir" --bind-address=0.0.0.0 --port=3306 --socket=/run/mysqld/mysqld.sock
