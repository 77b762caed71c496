# Private MariaDB servers for deploy/local and tests/run: each lives in a
# directory of its own (data, socket, pid, log) and listens on loopback only.
# Source this file; functions return non-zero with a message on failure.

# mariadb_free_port: prints a loopback TCP port nobody listens on (from $1, or a random one).
# A random port is taken below the kernel's ephemeral range (ip_local_port_range), from which
# every outgoing connection gets its local port: a server stopped and started again on its
# port would otherwise find it, now and then, held by some client's socket (bind: EADDRINUSE).
# And from 22200 up: the end-to-end tests of deploy/local take their blocks of ports below.
mariadb_free_port() {
  local start=${1:-0} port tries=0 low=32768 rest
  read -r low rest 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range || low=32768
  while ((tries++ < 200)); do
    if ((start > 0)); then
      port=$((start + tries - 1))
    elif ((low > 23200)); then
      port=$((22200 + RANDOM % (low - 22200)))
    else
      port=$((20000 + RANDOM % 30000))
    fi
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  echo "no free port found" >&2
  return 1
}

# process_alive PID: true when a process of the platform (a Rapport binary, MariaDB, or
# deploy/local/run's supervisor) runs under PID. kill -0 alone also succeeds on a zombie,
# and on these machines a killed process can linger unreaped. And a pid file left behind
# by a crash or a reboot may name a pid since given to an unrelated process, which must
# be neither taken for ours nor signalled: the process is known by the program it runs
# (its executable, or the script bash runs), not by words anywhere in its command line
# (an editor or a tail of a file under a checkout named rapport-... is not ours).
process_alive() {
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
  local state exe arg script=""
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo Z)
  [[ $state != Z && $state != X ]] || return 1
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  exe=${exe##*/}
  case $exe in
    rapport-* | mariadbd* | mysqld*) return 0 ;;  # "NAME (deleted)" once rebuilt
    bash*)
      # The script: bash's first argument that is not an option (bash -x SCRIPT).
      {
        IFS= read -r -d '' _
        while IFS= read -r -d '' arg; do
          [[ $arg == -* ]] && continue
          script=$arg
          break
        done
      } 2>/dev/null <"/proc/$1/cmdline" || true
      [[ $script == *deploy/local/run ]]
      ;;
    *) return 1 ;;
  esac
}

# mariadb_start DIR PORT: creates DIR/data on first use, starts the server, waits until it answers.
# Durable: a commit is on disk before it is acknowledged (innodb_flush_log_at_trx_commit=1,
# and sync_binlog=1 should a binlog be turned on). RAPPORT_DB_FLUSH=2 trades that for speed
# (a crash of the machine loses up to a second of commits): the tests' servers do, nothing
# else may.
mariadb_start() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f $dir/mariadb.pid ]] && process_alive "$(cat "$dir/mariadb.pid")"; then
    return 0  # already running
  fi
  local user_args=() tls_args=()
  ((EUID == 0)) && user_args=(--user=root)
  # RAPPORT_DB_TLS_DIR (ca.crt, server.crt, server.key): the server offers TLS too.
  if [[ -n ${RAPPORT_DB_TLS_DIR:-} ]]; then
    tls_args=(--ssl-ca="$RAPPORT_DB_TLS_DIR/ca.crt" --ssl-cert="$RAPPORT_DB_TLS_DIR/server.crt"
      --ssl-key="$RAPPORT_DB_TLS_DIR/server.key")
  fi
  # A temporary directory of its own: servers bootstrapping at the same time
  # in the shared /tmp collide on their temporary tables' file names.
  mkdir -p "$dir/tmp"
  if [[ ! -d $dir/data/mysql ]]; then
    # The admin account is the OS user the scripts connect as ($USER may be
    # unset, or name someone else, under env -i or a service manager).
    mariadb-install-db --datadir="$dir/data" --tmpdir="$dir/tmp" \
      --auth-root-authentication-method=socket --auth-root-socket-user="$(id -un)" \
      --skip-test-db --skip-name-resolve --force "${user_args[@]}" >"$dir/install.log" 2>&1 || {
      echo "mariadb-install-db failed, see $dir/install.log:" >&2
      grep -i -m 5 "error" "$dir/install.log" >&2 || true
      return 1
    }
  fi
  # Unix sockets are limited to 107 bytes of path: keep the socket short.
  local socket=$dir/mariadb.sock
  if ((${#socket} > 100)); then
    socket=$(mktemp -u /tmp/rapport-mariadb.XXXXXX).sock
  fi
  echo "$socket" >"$dir/socket-path"
  echo "$port" >"$dir/port"
  # Debian installs the server in /usr/sbin, which a user's PATH lacks.
  local server
  server=$(PATH=$PATH:/usr/sbin command -v mariadbd) || {
    echo "mariadbd not found (the mariadb-server package installs it)" >&2
    return 1
  }
  # A session of its own, as the services have: a Ctrl-C meant for the script
  # that started it does not reach it. Connections: the local platform's most
  # (3 domain services x 10 replicas x (16 pooled + a probe + a refresh's 2))
  # and the tests' servers fit in 1000.
  setsid "$server" --no-defaults --datadir="$dir/data" --tmpdir="$dir/tmp" --socket="$socket" \
    --port="$port" \
    --bind-address=127.0.0.1 --pid-file="$dir/mariadb.pid" --log-error="$dir/mariadb.log" \
    --skip-name-resolve --innodb-buffer-pool-size="${RAPPORT_DB_BUFFER_POOL:-512M}" \
    --innodb-flush-log-at-trx-commit="${RAPPORT_DB_FLUSH:-1}" --sync-binlog=1 \
    --innodb-log-file-size=256M --max-connections=1000 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    "${user_args[@]}" "${tls_args[@]}" >"$dir/mariadbd.out" 2>&1 9>&- &
  local i
  for ((i = 0; i < 300; i++)); do
    if mariadb-admin --no-defaults --socket="$socket" -u"$(id -un)" ping >/dev/null 2>&1; then
      return 0
    fi
    if ((i > 20)) && ! process_alive $!; then break; fi
    sleep 0.1
  done
  echo "MariaDB did not start on port $port; see $dir/mariadb.log:" >&2
  tail -n 20 "$dir/mariadb.log" "$dir/mariadbd.out" >&2 2>/dev/null || true
  return 1
}

# mariadb_sql DIR SQL...: runs statements as the OS user (the server's admin) over the socket.
mariadb_sql() {
  local dir=$1
  shift
  mariadb --no-defaults --socket="$(cat "$dir/socket-path")" -u"$(id -un)" -e "$*"
}

# mariadb_script DIR: the same for the statements on stdin, for those that hold a secret
# (a command line, -e's included, is readable by every local user).
mariadb_script() {
  mariadb --no-defaults --socket="$(cat "$1/socket-path")" -u"$(id -un)"
}

# mariadb_stop DIR: stops the server cleanly (waits for it to exit).
mariadb_stop() {
  local dir=$1 pid
  [[ -f $dir/mariadb.pid ]] || return 0
  pid=$(cat "$dir/mariadb.pid")
  if process_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    kill -CONT "$pid" 2>/dev/null || true # a paused server (SIGSTOP) acts once continued
    local i
    for ((i = 0; i < 600; i++)); do
      process_alive "$pid" || break
      sleep 0.1
    done
    process_alive "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$dir/mariadb.pid"
  return 0
}
