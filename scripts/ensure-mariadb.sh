#!/usr/bin/env bash
# ensure-mariadb.sh: make sure a MariaDB server answers on 127.0.0.1:3306 and
# that root can log in over TCP with an empty password (the default DSN of
# `usher dev` and of the tests).
#
# Idempotent and non-interactive (works with CI=true and no stdin). Needs root
# for the install/start steps; does nothing at all when the database already
# answers or when USHER_TEST_MYSQL_DSN is set (you bring your own database).
#
# Steps, each only when needed:
#   1. install mariadb-server + mariadb-client with apt-get (apt-get update
#      only if the first install attempt fails, e.g. on a fresh machine);
#   2. create /run/mysqld and the data directory;
#   3. start mariadbd in the background with start-stop-daemon (no systemd);
#   4. wait up to 60 s for it to answer on its unix socket;
#   5. if root over TCP is refused (1698: root@localhost is unix_socket-only on
#      Debian), allow root with an empty password too;
#   6. verify TCP login, or exit non-zero with a clear message.
set -euo pipefail

HOST=127.0.0.1
PORT=3306
SOCKET=/run/mysqld/mysqld.sock
DATADIR=/var/lib/mysql
MARIADBD=/usr/sbin/mariadbd
LOGDIR=/var/log/mysql
START_LOG=$LOGDIR/ensure-mariadb.log
WAIT_SECONDS=60

log() { echo "ensure-mariadb: $*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

if [[ -n "${USHER_TEST_MYSQL_DSN:-}" ]]; then
	log "USHER_TEST_MYSQL_DSN is set; using that database, nothing to do"
	exit 0
fi

tcp_login() { mariadb --protocol=tcp -h"$HOST" -P"$PORT" -uroot --connect-timeout=5 -e 'select 1' >/dev/null 2>&1; }
# stderr only (the error text), stdout dropped: the redirection order is intended.
# shellcheck disable=SC2069
tcp_error() { mariadb --protocol=tcp -h"$HOST" -P"$PORT" -uroot --connect-timeout=5 -e 'select 1' 2>&1 >/dev/null || true; }
socket_sql() { mariadb --protocol=socket --socket="$SOCKET" -uroot -e "$1"; }

if command -v mariadb >/dev/null 2>&1 && tcp_login; then
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	die "MariaDB does not answer on $HOST:$PORT as root with an empty password, and fixing that needs root (run: sudo $0), or set USHER_TEST_MYSQL_DSN to use another database"
fi

# 1. Install.
if [[ ! -x $MARIADBD ]] || ! command -v mariadb >/dev/null 2>&1; then
	log "installing mariadb-server and mariadb-client"
	export DEBIAN_FRONTEND=noninteractive
	apt_install() { apt-get install -y --no-install-recommends mariadb-server mariadb-client </dev/null; }
	if ! apt_install; then
		log "apt-get install failed; running apt-get update and trying again"
		apt-get update </dev/null
		apt_install
	fi
	[[ -x $MARIADBD ]] || die "$MARIADBD is still missing after installing mariadb-server"
fi

# 2. Directories.
install -d -o mysql -g mysql /run/mysqld
[[ -d $DATADIR ]] || install -d -o mysql -g mysql "$DATADIR"
[[ -d $LOGDIR ]] || install -d -o mysql -g adm "$LOGDIR"
if [[ ! -d $DATADIR/mysql ]]; then
	log "initialising the data directory $DATADIR"
	mariadb-install-db --user=mysql --datadir="$DATADIR" --skip-test-db >/dev/null
fi

# 3. Start. --oknodo: exit 0 if a mariadbd from $MARIADBD is already running.
# mariadbd starts as root and switches to --user itself. Command-line options
# override my.cnf, so socket/port/address are always what this script expects.
started=no
if ! mariadb-admin --protocol=socket --socket="$SOCKET" -uroot --connect-timeout=2 ping >/dev/null 2>&1; then
	log "starting mariadbd (output: $START_LOG)"
	start-stop-daemon --start --oknodo --background \
		--output "$START_LOG" \
		--exec "$MARIADBD" -- \
		--user=mysql --datadir="$DATADIR" --socket="$SOCKET" \
		--bind-address="$HOST" --port="$PORT"
	started=yes
fi

# 4. Wait for the server. `mariadb-admin ping` succeeds once the server
# answers, even if it then refuses the login.
deadline=$((SECONDS + WAIT_SECONDS))
until mariadb-admin --protocol=socket --socket="$SOCKET" -uroot --connect-timeout=2 ping >/dev/null 2>&1; do
	sleep 1
	if [[ $started == yes ]] && ! start-stop-daemon --status --exec "$MARIADBD"; then
		[[ -f $START_LOG ]] && tail -n 30 "$START_LOG" >&2
		die "mariadbd exited during start-up (see $START_LOG and $LOGDIR/error.log)"
	fi
	if ((SECONDS >= deadline)); then
		[[ $started == yes && -f $START_LOG ]] && tail -n 30 "$START_LOG" >&2
		die "mariadbd did not answer on $SOCKET within ${WAIT_SECONDS}s (see $START_LOG and $LOGDIR/error.log; is a mariadbd with another socket already running? pgrep -a mariadbd)"
	fi
done
[[ $started == yes ]] && log "mariadbd is up"

# 5. Root over TCP with an empty password. Debian's root@localhost is
# unix_socket-only (error 1698). With skip-name-resolve (as in some my.cnf),
# 127.0.0.1 does not match root@localhost at all (1130 "Host '127.0.0.1' is
# not allowed", or 1698/1045 for 'root'@'127.0.0.1'), so root@127.0.0.1 is
# needed as well.
if ! tcp_login; then
	err=$(tcp_error)
	case $err in
	*1698* | *1045* | *1130*)
		log "root is refused over TCP (${err//$'\n'/ }); allowing root with an empty password"
		socket_sql "ALTER USER root@localhost IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')" ||
			die "could not change root@localhost through $SOCKET"
		if [[ $(mariadb --protocol=socket --socket="$SOCKET" -uroot -N -B -e 'select @@skip_name_resolve') == 1 ]]; then
			socket_sql "CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY '';
				ALTER USER root@'127.0.0.1' IDENTIFIED BY '';
				GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;" ||
				die "could not set up root@127.0.0.1 through $SOCKET"
		fi
		;;
	esac
fi

# 6. Verify.
if ! tcp_login; then
	die "MariaDB still refuses 'mariadb -h$HOST -P$PORT -uroot' ($(tcp_error)). Is another server on port $PORT, or is skip-networking set in /etc/mysql?"
fi
log "MariaDB answers on $HOST:$PORT (user root, empty password)"
