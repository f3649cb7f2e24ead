#!/usr/bin/env bash
# A private Dovecot (IMAP) and Redis for trying vmbridge by hand and for the demo. Both listen on
# 127.0.0.1 only and keep everything (config, mail, logs, pidfiles) under <dir>.
#
#   scripts/servers.sh start  <dir>   start both; ports from IMAP_PORT (10143) and REDIS_PORT (16379)
#   scripts/servers.sh stop   <dir>   stop exactly the two processes started for <dir>
#   scripts/servers.sh status <dir>   exit 0 when both run, 3 otherwise
#
# IMAP users come from <dir>/users.passwd, created when missing with alice/alicepw, bob/bobpw and
# carol/carolpw. <dir>/masters.passwd holds the master user master/masterpw: log in as
# "alice*master" with password "masterpw" to act as alice. Add users by appending lines such as
#   dave:{PLAIN}davepw::::::
# to users.passwd; Dovecot picks them up on the next login.
# The Dovecot config is test/support/dovecot.conf.tmpl, the same file the tests use.
# With PUSH_URL set (e.g. http://127.0.0.1:18025/dovecot-push), Dovecot also runs
# config/dovecot/vmbridge-push.lua and POSTs every mail-store event there (docs/push.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEMPLATE="$ROOT/test/support/dovecot.conf.tmpl"

die() { echo "servers.sh: $*" >&2; exit 1; }
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }

[ "$#" -eq 2 ] || { usage >&2; exit 2; }
cmd="$1"
dir_arg="$2"

# --- helpers ---------------------------------------------------------------------------------

find_bin() {
  local name="$1" d
  local -a dirs
  IFS=: read -r -a dirs <<<"${PATH:-}"
  for d in "${dirs[@]}" /usr/sbin /usr/local/sbin /sbin; do
    if [ -n "$d" ] && [ -x "$d/$name" ]; then
      printf '%s\n' "$d/$name"
      return 0
    fi
  done
  return 1
}

# Running and not a zombie (an exited daemon can stay a zombie until init reaps it).
alive() {
  local pid="$1" stat
  kill -0 "$pid" 2>/dev/null || return 1
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

# The PID in a pidfile, if that process is alive and is the expected program. A stale pidfile
# whose number now belongs to something else is never signalled.
pid_of() {
  local pidfile="$1" comm="$2" pid
  [ -r "$pidfile" ] || return 1
  pid="$(tr -dc '0-9' <"$pidfile")"
  [ -n "$pid" ] && alive "$pid" || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
  printf '%s\n' "$pid"
}

stop_pid() {
  local pid="$1" what="$2" i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    alive "$pid" || { echo "stopped $what (pid $pid)"; return 0; }
    sleep 0.05
  done
  echo "servers.sh: $what (pid $pid) did not stop within 10 s; sending KILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Escapes a value for the replacement side of a sed s||| command.
sed_escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }

# Greeting must name our instance; then LOGIN must succeed. Exit 3 means a stranger has the port.
imap_login_ok() {
  local port="$1" instance="$2" user="$3" pass="$4"
  (
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    IFS= read -r -t 2 line <&3 || exit 1
    [[ "$line" == *"$instance ready."* ]] || exit 3
    printf 'a LOGIN "%s" "%s"\r\n' "$user" "$pass" >&3
    while IFS= read -r -t 5 line <&3; do
      case "$line" in
        "a OK"*) printf 'z LOGOUT\r\n' >&3; exit 0 ;;
        "a "*) exit 2 ;;
      esac
    done
    exit 1
  ) 2>/dev/null
}

redis_ready() {
  local port="$1" pid="$2" info
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] || return 1
    info="$(redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r')"
    grep -qx "process_id:$pid" <<<"$info"
  else
    (
      exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
      printf 'PING\r\n' >&3
      IFS= read -r -t 2 line <&3 && [[ "$line" == "+PONG"* ]]
    ) 2>/dev/null
  fi
}

state_get() {
  [ -r "$dir/servers.env" ] || return 0
  sed -n "s/^$1=//p" "$dir/servers.env" | head -n 1
}

# --- commands --------------------------------------------------------------------------------

do_status() {
  local imap_port redis_port base rc=0 pid
  imap_port="$(state_get IMAP_PORT)"
  redis_port="$(state_get REDIS_PORT)"
  base="$(state_get BASE_DIR)"
  if [ -n "$base" ] && pid="$(pid_of "$base/master.pid" dovecot)"; then
    echo "dovecot: running (pid $pid), imap://127.0.0.1:$imap_port"
  else
    echo "dovecot: stopped"
    rc=3
  fi
  if pid="$(pid_of "$dir/redis/redis.pid" redis-server)"; then
    echo "redis:   running (pid $pid), redis://127.0.0.1:$redis_port"
  else
    echo "redis:   stopped"
    rc=3
  fi
  return "$rc"
}

do_stop() {
  local base pid
  base="$(state_get BASE_DIR)"
  if [ -n "$base" ] && pid="$(pid_of "$base/master.pid" dovecot)"; then
    stop_pid "$pid" dovecot
  else
    echo "dovecot: not running"
  fi
  if pid="$(pid_of "$dir/redis/redis.pid" redis-server)"; then
    stop_pid "$pid" redis
  else
    echo "redis: not running"
  fi
  # A short socket folder outside <dir> (used when <dir> is long) is ours to remove.
  if [ -n "$base" ] && [ "$base" != "$dir/run" ] && [[ "$base" == /tmp/vmb-run-* ]]; then
    rm -rf "$base"
  fi
}

do_start() {
  local dovecot_bin redis_bin imap_port redis_port base instance
  dovecot_bin="$(find_bin dovecot)" || die "dovecot is not installed; run scripts/install-deps.sh"
  redis_bin="$(find_bin redis-server)" || die "redis-server is not installed; run scripts/install-deps.sh"
  [ -r "$TEMPLATE" ] || die "missing $TEMPLATE"
  if [ -f "$dir/servers.env" ] && do_status >/dev/null; then
    die "already running for $dir (scripts/servers.sh stop $dir)"
  fi
  imap_port="${IMAP_PORT:-10143}"
  redis_port="${REDIS_PORT:-16379}"
  port_busy "$imap_port" && die "port $imap_port is in use; choose another with IMAP_PORT=..."
  port_busy "$redis_port" && die "port $redis_port is in use; choose another with REDIS_PORT=..."

  # Users and master user.
  if [ ! -e "$dir/users.passwd" ]; then
    printf '%s\n' 'alice:{PLAIN}alicepw::::::' 'bob:{PLAIN}bobpw::::::' 'carol:{PLAIN}carolpw::::::' >"$dir/users.passwd"
  fi
  if [ ! -e "$dir/masters.passwd" ]; then
    printf '%s\n' 'master:{PLAIN}masterpw::::::' >"$dir/masters.passwd"
  fi

  # Who Dovecot's processes run as: as root, the package's users and nobody for mail (mail
  # processes may not be root); otherwise everything runs as the current user.
  local login_user internal_user internal_group mail_uid mail_gid
  mkdir -p "$dir/mail"
  if [ "$(id -u)" -eq 0 ]; then
    getent group dovecot >/dev/null || die "the dovecot system group is missing; reinstall dovecot-core"
    login_user=dovenull internal_user=dovecot internal_group=dovecot mail_uid=65534 mail_gid=65534
    chmod 711 "$dir"
    chown 65534:65534 "$dir/mail"
    chown root:dovecot "$dir/users.passwd" "$dir/masters.passwd"
    chmod 640 "$dir/users.passwd" "$dir/masters.passwd"
    if command -v runuser >/dev/null 2>&1; then
      runuser -u nobody -- test -x "$dir/mail" ||
        die "uid 65534 cannot reach $dir (a parent folder is private); use a folder under /tmp or /srv"
    fi
  else
    login_user="$(id -un)" internal_user="$(id -un)" internal_group="$(id -gn)" mail_uid="$(id -u)" mail_gid="$(id -g)"
    chmod 600 "$dir/users.passwd" "$dir/masters.passwd"
  fi

  # Unix socket paths are limited to ~107 bytes: keep the socket folder short.
  if [ "${#dir}" -le 70 ]; then
    base="$dir/run"
  else
    base="$(mktemp -d /tmp/vmb-run-XXXXXX)"
  fi
  instance="vmb-demo-$imap_port"
  printf 'IMAP_PORT=%s\nREDIS_PORT=%s\nBASE_DIR=%s\n' "$imap_port" "$redis_port" "$base" >"$dir/servers.env"

  sed -e "s|@INSTANCE@|$(sed_escape "$instance")|g" \
    -e "s|@DIR@|$(sed_escape "$dir")|g" \
    -e "s|@BASE_DIR@|$(sed_escape "$base")|g" \
    -e "s|@PORT@|$imap_port|g" \
    -e "s|@LOGIN_USER@|$(sed_escape "$login_user")|g" \
    -e "s|@INTERNAL_USER@|$(sed_escape "$internal_user")|g" \
    -e "s|@INTERNAL_GROUP@|$(sed_escape "$internal_group")|g" \
    -e "s|@MAIL_UID@|$mail_uid|g" \
    -e "s|@MAIL_GID@|$mail_gid|g" \
    -e "s|@CAPABILITY@||g" \
    "$TEMPLATE" >"$dir/dovecot.conf"
  if grep -q '@[A-Z_]*@' "$dir/dovecot.conf"; then
    die "unfilled placeholder in $dir/dovecot.conf: $(grep -o '@[A-Z_]*@' "$dir/dovecot.conf" | head -n 1)"
  fi

  rm -f "$dir/push.conf"
  if [ -n "${PUSH_URL:-}" ]; then
    [[ "$PUSH_URL" =~ ^http://[A-Za-z0-9.:_/-]+$ ]] || die "PUSH_URL must be a plain http:// URL, not $PUSH_URL"
    # Read by the mail processes, which run as the mail user.
    install -m 644 "$ROOT/config/dovecot/vmbridge-push.lua" "$dir/vmbridge-push.lua"
    printf '%s\n' 'mail_plugins = $mail_plugins notify push_notification mail_lua push_notification_lua' 'plugin {' \
      "  push_notification_driver = lua:file=$dir/vmbridge-push.lua" "  vmbridge_push_url = $PUSH_URL" '}' >"$dir/push.conf"
  fi

  echo "starting dovecot on 127.0.0.1:$imap_port"
  "$dovecot_bin" -c "$dir/dovecot.conf" </dev/null >"$dir/dovecot.start.out" 2>&1 ||
    die "dovecot did not start: $(cat "$dir/dovecot.start.out"); see also $dir/dovecot.log"

  # Ready = our greeting and a working LOGIN (the auth process is up), for the first PLAIN user.
  local first_user first_pass i rc
  IFS=: read -r first_user first_pass _ <"$dir/users.passwd" || true
  if [[ "$first_pass" == "{PLAIN}"* ]]; then
    first_pass="${first_pass#\{PLAIN\}}"
  else
    first_user=nobody-probe first_pass=x
  fi
  for ((i = 0; ; i++)); do
    rc=0
    imap_login_ok "$imap_port" "$instance" "$first_user" "$first_pass" || rc=$?
    [ "$rc" -eq 0 ] && break
    [ "$rc" -eq 3 ] && die "port $imap_port is answered by another server"
    [ "$rc" -eq 2 ] && [ "$first_user" = nobody-probe ] && break
    [ "$i" -lt 200 ] || die "dovecot did not accept LOGIN within 10 s; see $dir/dovecot.log"
    sleep 0.05
  done

  echo "starting redis on 127.0.0.1:$redis_port"
  mkdir -p "$dir/redis"
  rm -f "$dir/redis/redis.pid"
  "$redis_bin" --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" --daemonize yes \
    --pidfile "$dir/redis/redis.pid" --logfile "$dir/redis/redis.log" --save '' --appendonly no \
    </dev/null >"$dir/redis.start.out" 2>&1 || die "redis-server did not start: $(cat "$dir/redis.start.out")"
  local redis_pid=""
  for ((i = 0; ; i++)); do
    if [ -z "$redis_pid" ]; then redis_pid="$(tr -dc '0-9' <"$dir/redis/redis.pid" 2>/dev/null || true)"; fi
    if [ -n "$redis_pid" ]; then
      alive "$redis_pid" || die "redis-server exited: $(tail -n 5 "$dir/redis/redis.log")"
      redis_ready "$redis_port" "$redis_pid" && break
    fi
    [ "$i" -lt 200 ] || die "redis did not answer PING within 10 s; see $dir/redis/redis.log"
    sleep 0.05
  done

  cat <<EOF

IMAP   127.0.0.1:$imap_port, plain text (no TLS), e.g. settings imap: { host: 127.0.0.1, port: $imap_port, secure: false }
       users: $(cut -d: -f1 "$dir/users.passwd" | paste -sd' ' -) (see $dir/users.passwd)
       master user: log in as "<user>*master" with password "masterpw"
Redis  redis://127.0.0.1:$redis_port
Logs   $dir/dovecot.log, $dir/redis/redis.log
Stop   scripts/servers.sh stop $dir
EOF
}

case "$cmd" in
  start)
    mkdir -p "$dir_arg"
    dir="$(cd "$dir_arg" && pwd)"
    do_start
    ;;
  stop | status)
    [ -d "$dir_arg" ] || die "no such folder: $dir_arg"
    dir="$(cd "$dir_arg" && pwd)"
    if [ "$cmd" = stop ]; then do_stop; else do_status; fi
    ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
