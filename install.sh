#!/usr/bin/env bash
# install.sh: a fresh Mac mini (or a Linux box) to a running axe-appliance in one command.
# `install.sh --help` lists the options; docs/operations.md walks through an install.
# Every step checks before it changes anything, so a second run changes nothing and says so.
set -euo pipefail
umask 022

PROG=install.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<'EOF'
install.sh: put axe-appliance on this machine (macOS or Linux) and start it.

Usage: sudo ./install.sh --customer NAME [options]
       sudo ./install.sh --uninstall [--purge --customer NAME] [options]
       sudo ./install.sh --ring-peer NAME --ring-key FILE [--prefix DIR] [--dry-run]

Installs the binary (sha256 checked), creates PREFIX/{bin,config,config/secrets,data},
writes config/appliance.yaml for the customer (validated against customers.yaml), creates
the keys, backup passwords and the ring's ssh key (0600, never overwritten), gives blue and green their first
release, installs and loads the launchd plists (macOS) or systemd units (Linux) for proxy,
blue, green and the backup timers, puts the deploy key's forced command into the deploy
user's authorized_keys, then runs `axe-appliance doctor`. Run it again at any time: what is
already in place is left alone.

Options:
  --customer NAME          this machine's customer in customers.yaml (needed the first time)
  --customers FILE         the fleet file to install (default: customers.yaml beside install.sh,
                           else the one already installed)
  --prefix DIR             where everything goes (default /opt/axe)
  --binary PATH            install this binary (default: axe-appliance-<os>-<arch> or
                           axe-appliance beside install.sh or in dist/, checked against the
                           SHA256SUMS file next to it)
  --sha256 HEX             the expected sha256 of --binary (else SHA256SUMS beside it, if any)
  --database-url URL       production Postgres, e.g. postgres://frame@127.0.0.1:3700/frame
                           (no password in the URL; default: the embedded cluster)
  --database-password-file FILE
                           copied to config/secrets/database.password (0600) when missing
  --proxy-port N --blue-port N --green-port N
                           ports for a new appliance.yaml (default 3712, 3710, 3711)
  --metrics-port N|off     the proxy's loopback /metrics port for a new appliance.yaml (default
                           3714; off: none, the admin socket still serves /metrics)
  --deploy-user NAME       the account `deploy push` reaches over ssh (default axe; must match
                           ssh_user in customers.yaml)
  --deploy-key FILE        the operator's deploy public key (ssh-ed25519 ... comment)
  --authorized-keys FILE   where its forced-command line goes (default ~DEPLOY_USER/.ssh/authorized_keys;
                           written as the owner of its directory; a link there is refused)
  --no-deploy-key          leave authorized_keys and sudoers alone
  --backend launchd|systemd  which unit files to make (default: this OS's)
  --no-services            touch nothing outside PREFIX: unit files go to PREFIX/services,
                           nothing is loaded, authorized_keys only with --authorized-keys; a
                           new appliance.yaml says deploy.service_backend: child, the receiver
                           runs without sudo (as --deploy-user), and `axe-appliance up --config
                           PREFIX/config` runs the appliance (a test install)
  --dry-run                print every action and change nothing
  --ring-peer NAME         only set up this machine as the backup ring peer of customer NAME (the
                           customer before this one in the ring): a dedicated account (--ring-user)
                           that may only sftp into PREFIX/data/backup/ring/NAME, chrooted there
  --ring-key FILE          with --ring-peer: the public key NAME's machine backs up with (its
                           config/secrets/ring_ed25519.pub, which its install.sh printed); it replaces
                           the previous one
  --ring-user NAME         the ring account (default axe-ring; never the deploy user)
  --sshd-config FILE       with --ring-peer or --uninstall: where the account's sshd Match block goes
                           (default /etc/ssh/sshd_config.d/axe-ring.conf; with --no-services sshd is not reloaded)
  --uninstall              unload and remove the services, the deploy key's forced command, and the
                           ring account with its key and sshd block (only what install.sh made for
                           PREFIX); config, keys and data (the ring peer's copy too) stay
  --purge                  with --uninstall: also delete PREFIX, keys and data included
                           (needs --customer naming the installed customer, as a confirmation)
  -h, --help               this help

Exit codes: 0 installed (or nothing to change), 1 a step failed, 2 usage or unsupported
platform, 3 configuration (unknown customer, invalid customers.yaml, another customer already
installed), 4 no write permission, 5 binary missing or its sha256 does not match, 6 a port is
taken by another program, 10 installed but doctor found problems (it prints the fixes).
EOF
}

die() {
  local code=$1
  shift
  echo "$PROG: error: $*" >&2
  exit "$code"
}
say() { echo "$PROG: $*"; }
warn() { echo "$PROG: warning: $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------
prefix=/opt/axe customer="" customers_src="" binary="" want_sha="" database_url="" database_password_file=""
proxy_port="" blue_port="" green_port="" metrics_port="" deploy_user=axe deploy_key="" authorized_keys="" no_deploy_key=0
backend="" no_services=0 dry_run=0 uninstall=0 purge=0
ring_peer="" ring_key="" ring_user=axe-ring sshd_dropin=/etc/ssh/sshd_config.d/axe-ring.conf

need_value() { if [ $# -lt 2 ] || [ -z "$2" ]; then die 2 "$1 needs a value; see '$PROG --help'"; fi; }
while [ $# -gt 0 ]; do
  opt=$1
  case "$opt" in
    --*=*) set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; continue ;;
    --customer) need_value "$@"; customer=$2; shift ;;
    --customers) need_value "$@"; customers_src=$2; shift ;;
    --prefix) need_value "$@"; prefix=$2; shift ;;
    --binary) need_value "$@"; binary=$2; shift ;;
    --sha256) need_value "$@"; want_sha=$2; shift ;;
    --database-url) need_value "$@"; database_url=$2; shift ;;
    --database-password-file) need_value "$@"; database_password_file=$2; shift ;;
    --proxy-port) need_value "$@"; proxy_port=$2; shift ;;
    --blue-port) need_value "$@"; blue_port=$2; shift ;;
    --green-port) need_value "$@"; green_port=$2; shift ;;
    --metrics-port) need_value "$@"; metrics_port=$2; shift ;;
    --deploy-user) need_value "$@"; deploy_user=$2; shift ;;
    --deploy-key) need_value "$@"; deploy_key=$2; shift ;;
    --authorized-keys) need_value "$@"; authorized_keys=$2; shift ;;
    --no-deploy-key) no_deploy_key=1 ;;
    --backend) need_value "$@"; backend=$2; shift ;;
    --no-services) no_services=1 ;;
    --dry-run) dry_run=1 ;;
    --uninstall) uninstall=1 ;;
    --purge) purge=1 ;;
    --ring-peer) need_value "$@"; ring_peer=$2; shift ;;
    --ring-key) need_value "$@"; ring_key=$2; shift ;;
    --ring-user) need_value "$@"; ring_user=$2; shift ;;
    --sshd-config) need_value "$@"; sshd_dropin=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die 2 "unknown option '$opt'; see '$PROG --help'" ;;
  esac
  shift
done

case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
prefix=${prefix%/}
[ -n "$prefix" ] || die 2 "--prefix / is not an install directory"
metrics_number=$metrics_port
[ "$metrics_port" != off ] || metrics_number=""
for port in "$proxy_port" "$blue_port" "$green_port" "$metrics_number"; do
  [ -z "$port" ] || { [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ]; } || die 2 "'$port' is not a TCP port (1-65535)"
done
[[ "$customer" =~ ^([a-z][a-z0-9_]{0,30})?$ ]] || die 2 "--customer '$customer' is not a customer name (lower-case letters, digits and _)"
[[ "$deploy_user" =~ ^[a-z_][a-z0-9_-]*$ ]] || die 2 "--deploy-user '$deploy_user' is not an account name"
[[ "$want_sha" =~ ^([0-9a-f]{64})?$ ]] || die 2 "--sha256 expects 64 lower-case hex digits"
# A password on the command line would sit in the shell history and the process list.
[[ "$database_url" =~ ^postgres(ql)?://[^/@]*:[^/@]*@ ]] && die 2 "--database-url holds a password; put it in a file and pass --database-password-file FILE"
[ $purge -eq 0 ] || [ $uninstall -eq 1 ] || die 2 "--purge only goes with --uninstall"
[[ "$ring_peer" =~ ^([a-z][a-z0-9_]{0,30})?$ ]] || die 2 "--ring-peer '$ring_peer' is not a customer name (lower-case letters, digits and _)"
[[ "$ring_user" =~ ^[a-z_][a-z0-9_-]{0,30}$ ]] || die 2 "--ring-user '$ring_user' is not an account name"
[ -z "$ring_peer" ] || [ $uninstall -eq 0 ] || die 2 "--ring-peer does not go with --uninstall"
case "$sshd_dropin" in /*) ;; *) die 2 "--sshd-config needs an absolute path" ;; esac

# ---------------------------------------------------------------------------------------------
# Platform
# ---------------------------------------------------------------------------------------------
os=$(uname -s)
arch=$(uname -m)
case "$os" in
  Darwin) platform=darwin native_backend=launchd ;;
  Linux) platform=linux native_backend=systemd ;;
  *) die 2 "unsupported OS '$os': axe-appliance runs on macOS (Apple silicon or Intel) and Linux" ;;
esac
case "$arch" in
  arm64 | aarch64) cpu=arm64 ;;
  x86_64 | amd64) cpu=x64 ;;
  *) die 2 "unsupported architecture '$arch' on $os: expected arm64 or x86_64" ;;
esac
target="$platform-$cpu"
backend=${backend:-$native_backend}
case "$backend" in launchd | systemd) ;; *) die 2 "--backend must be launchd or systemd, not '$backend'" ;; esac
[ "$backend" = "$native_backend" ] || [ $no_services -eq 1 ] || die 2 "--backend $backend cannot be loaded on $os; add --no-services to only write the files"

bin_dir="$prefix/bin" cfg="$prefix/config" data="$prefix/data"
installed_bin="$bin_dir/axe-appliance" secrets="$cfg/secrets"
unit_dir_args=()
[ $no_services -eq 1 ] && unit_dir_args=(--dir "$prefix/services" --no-load)
sudoers=/etc/sudoers.d/axe-appliance

mode_of() { if [ "$platform" = darwin ]; then stat -f %Lp "$1"; else stat -c %a "$1"; fi; }
sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

changes=0
# act DESCRIPTION COMMAND...: one change to the machine; --dry-run prints it instead.
act() {
  local what=$1
  shift
  changes=$((changes + 1))
  if [ $dry_run -eq 1 ]; then say "would $what"; else say "$what"; "$@"; fi
}
install_file() { # SRC DEST MODE: atomically, so a running program never sees half a file
  cp "$1" "$2.install-$$"
  chmod "$3" "$2.install-$$"
  mv -f "$2.install-$$" "$2"
}
# The binary's lines that report a change ("created", "wrote", ...) count as changes.
count_changes() {
  local out=$1 n
  n=$(printf '%s\n' "$out" | grep -cE '^(created|gave|wrote|installed|pointed|removed|ran|would|local: created|ring: created|cold: created)' || true)
  changes=$((changes + n))
}

# ---------------------------------------------------------------------------------------------
# Permission: fail before anything is written
# ---------------------------------------------------------------------------------------------
nearest=$prefix
while [ ! -e "$nearest" ]; do nearest=$(dirname "$nearest"); done
[ -d "$nearest" ] || die 4 "$nearest is not a directory; choose another --prefix"
[ -w "$nearest" ] || die 4 "no write permission on $nearest (for $prefix); run with sudo, or pass --prefix DIR you can write"
if [ $no_services -eq 0 ] && [ $dry_run -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  die 4 "installing $backend services needs root: run install.sh with sudo, or add --no-services"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/axe-install.XXXXXX")
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------------------------------------
# Deploy key: the forced command that lets `deploy push` run the receiver and nothing else
# ---------------------------------------------------------------------------------------------
home_of() {
  if [ "$platform" = darwin ]; then dscl . -read "/Users/$1" NFSHomeDirectory 2>/dev/null | awk '{print $2}'; else getent passwd "$1" | cut -d: -f6; fi
}
# The forced command runs the receiver through sudo only when it must restart root's services.
uses_sudo() { [ $no_services -eq 0 ] && [ "$deploy_user" != root ]; }
forced_command() {
  local who=$1
  if ! uses_sudo; then
    printf '%s deploy receive --config %s --who %s' "$installed_bin" "$cfg" "$who"
  else
    # The receiver restarts launchd/systemd services, which takes root: sudoers allows this one line.
    printf 'AXE_DEPLOY_WHO=%s sudo -n %s deploy receive --config %s' "$who" "$installed_bin" "$cfg"
  fi
}
sudoers_text() {
  cat <<EOF
# axe-appliance (install.sh): the deploy key's forced command runs the release receiver as root,
# which restarts blue and green through $backend; the status key's runs the status report, which
# reads root's secrets and the proxy's admin socket. Nothing else.
Defaults!$installed_bin env_keep += "AXE_DEPLOY_WHO"
$deploy_user ALL=(root) NOPASSWD: $installed_bin deploy receive --config $cfg, $installed_bin status --json --config $cfg
EOF
}
owner_of() { if [ "$platform" = darwin ]; then stat -f %Su "$1"; else stat -c %U "$1"; fi; }
names_of() { if [ "$platform" = darwin ]; then stat -f %l "$1"; else stat -c %h "$1"; fi; }
# as_user USER COMMAND...: as root, run COMMAND as USER, so a link USER planted leads only where USER could write anyway.
as_user() {
  local user=$1
  shift
  if [ "$(id -u)" -ne 0 ] || [ "$user" = root ]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u "$user" -- "$@"
  else
    sudo -n -u "$user" -- "$@"
  fi
}
# check_keys_path FILE: an authorized_keys and its .ssh must be what they look like. Their account can
# plant a link (or, on macOS, a second name of root's file) there; root must never write through it.
check_keys_path() {
  local file=$1 dir
  dir=$(dirname "$file")
  [ ! -L "$dir" ] || die 1 "$dir is a symbolic link; refusing to write the deploy key through it: make it a real directory (mode 700) of its account, then run again"
  [ ! -e "$dir" ] || [ -d "$dir" ] || die 1 "$dir is not a directory; refusing to write the deploy key there"
  [ ! -L "$file" ] || die 1 "$file is a symbolic link; refusing to write the deploy key through it: make it a regular file (mode 600) of its account, then run again"
  [ ! -e "$file" ] && return 0
  [ -f "$file" ] || die 1 "$file is not a regular file; refusing to write the deploy key there"
  [ "$(names_of "$file")" -eq 1 ] || die 1 "$file has $(names_of "$file") names (hard links): it may be another file's second name; refusing to write the deploy key into it: replace it with a file of its own"
  [ "$(owner_of "$file")" = "$(owner_of "$dir")" ] || die 1 "$file belongs to $(owner_of "$file"), not to $(owner_of "$dir") who owns $dir; refusing to write the deploy key into it"
}
# edit_keys FILE [LINE [ALSO]]: FILE without our forced-command lines (and lines holding ALSO), plus LINE,
# written by the owner of FILE's directory (of its parent when .ssh does not exist yet): root never
# writes into another account's .ssh.
edit_keys() {
  local file=$1 line=${2:-} also=${3:-} dir owner
  dir=$(dirname "$file")
  check_keys_path "$file"
  if [ -d "$dir" ]; then owner=$(owner_of "$dir"); else owner=$(owner_of "$(dirname "$dir")"); fi
  # shellcheck disable=SC2016 # $1.. are the inner shell's
  as_user "$owner" /bin/sh -c 'umask 077
    [ -d "$1" ] || mkdir -m 700 "$1" || exit 1
    tmp="$2.axe-install-$$"
    if [ -f "$2" ]; then
      grep -v -F -e "$3" -e "${5:-$3}" "$2" >"$tmp"
      [ $? -le 1 ] || { rm -f "$tmp"; exit 1; }
    else
      : >"$tmp" || exit 1
    fi
    if [ -n "$4" ]; then printf "%s\n" "$4" >>"$tmp" || exit 1; fi
    mv -f "$tmp" "$2"' sh "$dir" "$file" "$installed_bin deploy receive --config $cfg" "$line" "$also" ||
    die 1 "could not write $file as $owner"
}

# running_here: what still runs from this prefix: the services `up` (child backend) started, and the
# embedded Postgres, by their PID files. launchd/systemd services are stopped by `services uninstall`.
running_here() {
  local pidfile pid
  for pidfile in "$data"/run/services/*.pid "$data"/postgres/pgdata/postmaster.pid; do
    [ -f "$pidfile" ] || continue
    # the child backend's are JSON ({"pid":N,...}); postmaster.pid has the pid on its first line
    pid=$(sed -n 's/.*"pid":\([0-9][0-9]*\).*/\1/p' "$pidfile" 2>/dev/null | head -n 1)
    [ -n "$pid" ] || pid=$(head -n 1 "$pidfile" 2>/dev/null | tr -dc '0-9')
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then continue; fi
    case "$pidfile" in
      */postmaster.pid) printf 'Postgres (pid %s, data in %s)\n' "$pid" "$data/postgres" ;;
      *) printf '%s (pid %s)\n' "$(basename "$pidfile" .pid)" "$pid" ;;
    esac
  done
}

# ---------------------------------------------------------------------------------------------
# The ring peer's sshd settings and account (made by --ring-peer, removed by --uninstall)
# ---------------------------------------------------------------------------------------------
ring_header="# axe-appliance (install.sh --ring-peer"
ring_gecos="axe ring peer"
# apply_sshd PREVIOUS: sshd checks the settings file as it is now and reloads; refused, PREVIOUS (or no file) is put back.
apply_sshd() {
  local previous=$1
  if [ $dry_run -eq 1 ]; then
    return 0
  elif [ $no_services -eq 1 ]; then
    say "sshd not reloaded (--no-services): the change to $sshd_dropin applies once sshd reads it"
    return 0
  fi
  if ! /usr/sbin/sshd -t 2>"$work/sshd.err"; then
    if [ -n "$previous" ]; then printf '%s\n' "$previous" >"$sshd_dropin"; else rm -f "$sshd_dropin"; fi
    die 1 "sshd -t refused the new settings, the old ones are back: $(tr '\n' ' ' <"$work/sshd.err")"
  fi
  if [ "$platform" = linux ] && command -v systemctl >/dev/null 2>&1; then
    systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null ||
      warn "could not reload sshd: run 'systemctl reload ssh' so the change to $sshd_dropin applies"
  fi # macOS starts sshd for each connection, with the file as it is then
}
comment_of() {
  if [ "$platform" = darwin ]; then
    dscl . -read "/Users/$1" RealName 2>/dev/null | sed -n 's/^RealName:[[:space:]]*//; s/^[[:space:]]*//; /./p' | tail -n 1
  else
    getent passwd "$1" | cut -d: -f5
  fi
}
remove_ring_account() {
  if [ "$platform" = darwin ]; then
    if dscl . -read /Groups/com.apple.access_ssh >/dev/null 2>&1; then
      dseditgroup -o edit -d "$ring_user" -t user com.apple.access_ssh || true
    fi
    dscl . -delete "/Users/$ring_user"
  else
    local group=""
    [ "$(id -gn "$ring_user")" != "$ring_user" ] || group=$ring_user # useradd --user-group made it
    userdel "$ring_user" || return 1
    if [ -n "$group" ] && getent group "$group" >/dev/null; then
      groupdel "$group" || warn "could not remove the group $group: remove it with 'groupdel $group'"
    fi
  fi
}

# ---------------------------------------------------------------------------------------------
# Uninstall
# ---------------------------------------------------------------------------------------------
if [ $uninstall -eq 1 ]; then
  installed_customer=""
  [ -f "$cfg/appliance.yaml" ] && installed_customer=$(sed -n 's/^customer:[[:space:]]*\([a-z0-9_]*\).*/\1/p' "$cfg/appliance.yaml" | head -n 1)
  if [ $purge -eq 1 ]; then
    [ -n "$customer" ] || die 2 "--purge deletes $prefix with its keys and data: confirm with --customer ${installed_customer:-NAME}"
    [ -z "$installed_customer" ] || [ "$customer" = "$installed_customer" ] || die 3 "--customer $customer does not match the installed customer $installed_customer; nothing deleted"
  fi
  running=$(running_here | paste -sd, - | sed 's/,/, /g')
  if [ -n "$running" ] && [ $purge -eq 1 ] && [ $dry_run -eq 0 ]; then
    die 1 "still running from $prefix: $running; stop them first (Ctrl-C the \`axe-appliance up\` that runs them; Postgres: $installed_bin db stop --config $cfg; or kill those pids), then purge; nothing deleted"
  elif [ -n "$running" ] && [ $purge -eq 1 ]; then
    warn "still running from $prefix: $running; --purge refuses to delete $data under them: stop them first"
  elif [ -n "$running" ]; then
    warn "still running from $prefix: $running; uninstall does not stop them (Ctrl-C the \`axe-appliance up\` that runs them; Postgres: $installed_bin db stop --config $cfg)"
  fi
  if [ -x "$installed_bin" ]; then
    dry=()
    [ $dry_run -eq 1 ] && dry=(--dry-run)
    out=$("$installed_bin" services uninstall --backend "$backend" ${unit_dir_args[@]+"${unit_dir_args[@]}"} ${dry[@]+"${dry[@]}"})
    printf '%s\n' "$out" | sed "s/^/$PROG: /"
    count_changes "$out"
  else
    say "no binary at $installed_bin: no services to remove"
  fi
  if [ $no_deploy_key -eq 0 ]; then
    keys_file=$authorized_keys
    if [ -z "$keys_file" ] && [ $no_services -eq 0 ]; then
      home=$(home_of "$deploy_user" || true)
      [ -z "$home" ] || keys_file="$home/.ssh/authorized_keys"
    fi
    [ -z "$keys_file" ] || check_keys_path "$keys_file"
    status_line=""
    [ $purge -eq 0 ] || status_line="$installed_bin status --json --config $cfg" # its binary goes too
    if [ -n "$keys_file" ] && [ -f "$keys_file" ] && grep -q -F "$installed_bin deploy receive --config $cfg" "$keys_file"; then
      act "remove the deploy key's forced command from $keys_file" edit_keys "$keys_file" "" "$status_line"
    elif [ -n "$status_line" ] && [ -n "$keys_file" ] && [ -f "$keys_file" ] && grep -q -F "$status_line" "$keys_file"; then
      act "remove the status key's forced command from $keys_file" edit_keys "$keys_file" "" "$status_line"
    fi
    if [ $no_services -eq 0 ] && [ -f "$sudoers" ]; then act "remove $sudoers" rm -f "$sudoers"; fi
  fi
  # The ring peer's account: its sshd settings file says which account this prefix made. The peer's copy is data: it stays.
  ring_keys="$cfg/ring/authorized_keys"
  if [ -f "$sshd_dropin" ] && ! grep -qF "$ring_header" "$sshd_dropin"; then
    warn "left $sshd_dropin: install.sh did not write it"
  elif [ -f "$sshd_dropin" ] && ! grep -qxF "    AuthorizedKeysFile $ring_keys" "$sshd_dropin"; then
    warn "left $sshd_dropin: it is not this prefix's ($prefix); uninstall with its --prefix removes it"
  elif [ -f "$sshd_dropin" ]; then
    ring_user=$(sed -n 's/^Match User \([a-z_][a-z0-9_-]*\)$/\1/p' "$sshd_dropin" | head -n 1)
    if [ -n "$ring_user" ] && id -u "$ring_user" >/dev/null 2>&1; then
      if [ "$(comment_of "$ring_user")" != "$ring_gecos" ]; then
        warn "left the account $ring_user: install.sh did not make it (its name is not '$ring_gecos')"
      else
        act "remove the ring account $ring_user" remove_ring_account ||
          die 1 "could not remove the account $ring_user: is the peer still connected? End its sftp sessions and run again"
      fi
    fi
  fi
  if [ -f "$ring_keys" ] && grep -qvE '^restrict,command="internal-sftp -d /' "$ring_keys"; then
    warn "left $ring_keys: it holds lines install.sh did not write"
  elif [ -f "$ring_keys" ]; then
    act "remove $ring_keys: the ring peer's key" rm -f "$ring_keys"
  fi
  if [ -f "$sshd_dropin" ] && grep -qF "$ring_header" "$sshd_dropin" && grep -qxF "    AuthorizedKeysFile $ring_keys" "$sshd_dropin"; then
    previous=$(cat "$sshd_dropin")
    act "remove $sshd_dropin: the ring account's sshd settings" rm -f "$sshd_dropin"
    apply_sshd "$previous"
  fi
  if [ $purge -eq 0 ]; then
    for copy in "$data"/backup/ring/*/; do
      copy="${copy%/}/$(basename "$copy")"
      [ ! -d "$copy" ] || say "kept $copy, $(basename "$copy")'s ring copy; --purge deletes it"
    done
  fi
  if [ $purge -eq 1 ] && [ -e "$prefix" ]; then
    [ -f "$cfg/appliance.yaml" ] || die 3 "$prefix has no config/appliance.yaml: not an axe-appliance prefix, nothing deleted"
    act "delete $prefix (binary, config, keys, data)" rm -rf -- "$prefix"
  elif [ -d "$prefix" ]; then
    say "kept $cfg and $data (keys, database, backups); --purge deletes them"
  fi
  [ $changes -gt 0 ] || say "nothing to change: no services of this appliance were installed"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Ring peer: the neighbour that backs up here gets an sftp-only account chrooted into its own
# directory, never the deploy user: its machine can reach nothing of this one but its copy.
# ---------------------------------------------------------------------------------------------
uid_of() { if [ "$platform" = darwin ]; then stat -L -f %u "$1"; else stat -L -c %u "$1"; fi; }
perm_of() { if [ "$platform" = darwin ]; then stat -L -f %Lp "$1"; else stat -L -c %a "$1"; fi; }
# check_root_path DIR: sshd's rule for a ChrootDirectory: DIR and every directory above it are
# root's and writable by nobody else (a sticky /tmp does not count). Parts not made yet are skipped.
check_root_path() {
  local dir=$1 perm
  while :; do
    if [ -e "$dir" ]; then
      perm=$(perm_of "$dir")
      [ "$(uid_of "$dir")" -eq 0 ] || die 1 "$dir belongs to $(owner_of "$dir"), not root: sshd refuses a ChrootDirectory below it; use a --prefix whose every directory is root's"
      [ $((8#$perm & 8#022)) -eq 0 ] || die 1 "$dir is writable by others (mode $perm): sshd refuses a ChrootDirectory below it; use a --prefix whose every directory is root's and writable by root only (the default /opt/axe is)"
    fi
    [ "$dir" != / ] || break
    dir=$(dirname "$dir")
  done
}
make_ring_account() {
  if [ "$platform" = darwin ]; then
    local id=450
    while dscl . -list /Users UniqueID | awk '{print $2}' | grep -qx "$id"; do id=$((id + 1)); done
    dscl . -create "/Users/$ring_user" &&
      dscl . -create "/Users/$ring_user" UniqueID "$id" &&
      dscl . -create "/Users/$ring_user" PrimaryGroupID -2 &&
      dscl . -create "/Users/$ring_user" UserShell /usr/bin/false &&
      dscl . -create "/Users/$ring_user" NFSHomeDirectory /var/empty &&
      dscl . -create "/Users/$ring_user" RealName "$ring_gecos" &&
      dscl . -create "/Users/$ring_user" IsHidden 1 &&
      dscl . -create "/Users/$ring_user" Password '*' || return 1
    # Remote Login limited to some users: this one must be among them.
    if dscl . -read /Groups/com.apple.access_ssh >/dev/null 2>&1; then
      dseditgroup -o edit -a "$ring_user" -t user com.apple.access_ssh
    fi
  else
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      --comment "$ring_gecos" "$ring_user" &&
      # no password, yet not "locked": sshd without PAM refuses any key of a locked account
      usermod -p '*' "$ring_user"
  fi
}
make_ring_dir() { mkdir -m 700 "$1" && chown "$ring_user" "$1"; }
write_text() { # FILE MODE: stdin, atomically
  cat >"$work/text"
  install_file "$work/text" "$1" "$2"
}
ring_block() {
  cat <<EOF
$ring_header $ring_peer): the machine of customer $ring_peer keeps its
# restic copy here over sftp, chrooted into its directory, and can do nothing else. sshd requires
# the ChrootDirectory and every directory above it to be root's and writable by root only.
Match User $ring_user
    ChrootDirectory $chroot
    ForceCommand internal-sftp -d /$ring_peer
    AuthorizedKeysFile $ring_keys
    PubkeyAuthentication yes
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    AllowTcpForwarding no
    AllowAgentForwarding no
    AllowStreamLocalForwarding no
    X11Forwarding no
    PermitTunnel no
    PermitTTY no
EOF
}
if [ -n "$ring_peer" ]; then
  [ -n "$ring_key" ] || die 2 "--ring-peer needs --ring-key FILE: the public key of $ring_peer's machine (its /opt/axe/config/secrets/ring_ed25519.pub, which its install.sh printed)"
  [ -f "$ring_key" ] || die 2 "--ring-key $ring_key: no such file"
  read -r ring_type ring_blob ring_comment <"$ring_key" || true
  if ! [[ "${ring_type:-}" =~ ^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp[0-9]+|sk-ssh-ed25519@openssh.com)$ ]] || ! [[ "${ring_blob:-}" =~ ^[A-Za-z0-9+/=]+$ ]]; then
    die 2 "--ring-key $ring_key is not an ssh public key (expected 'ssh-ed25519 AAAA... comment')"
  fi
  if [ "$ring_user" = "$deploy_user" ] || [ "$ring_user" = root ]; then
    die 2 "--ring-user $ring_user: the ring account must be an account of its own, never the deploy user or root"
  fi
  if [ -f "$cfg/customers.yaml" ] && ! grep -qE "^[[:space:]]*-?[[:space:]]*name:[[:space:]]*['\"]?${ring_peer}['\"]?[[:space:]]*(#.*)?$" "$cfg/customers.yaml"; then
    die 3 "--ring-peer $ring_peer is not a customer in $cfg/customers.yaml"
  fi
  [ $dry_run -eq 1 ] || [ "$(id -u)" -eq 0 ] || die 4 "the ring account and its sshd settings need root: run install.sh with sudo"
  chroot="$data/backup/ring/$ring_peer" ring_keys="$cfg/ring/authorized_keys"
  check_root_path "$chroot"
  check_root_path "$(dirname "$ring_keys")"
  [ -d "$(dirname "$sshd_dropin")" ] || die 1 "$(dirname "$sshd_dropin") does not exist: is OpenSSH's server installed? (--sshd-config FILE puts the settings elsewhere)"
  if [ "$sshd_dropin" = /etc/ssh/sshd_config.d/axe-ring.conf ] && ! grep -qE '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\.d/\*' /etc/ssh/sshd_config 2>/dev/null; then
    die 1 "/etc/ssh/sshd_config does not include /etc/ssh/sshd_config.d: add 'Include /etc/ssh/sshd_config.d/*.conf' as its first line, or pass --sshd-config FILE for a file it includes"
  fi

  if ring_uid=$(id -u "$ring_user" 2>/dev/null); then
    [ "$ring_uid" -ne 0 ] || die 2 "--ring-user $ring_user is root"
  else
    act "create the ring account $ring_user (no password, no shell, no home; sftp only)" make_ring_account ||
      die 1 "could not create the account $ring_user"
  fi
  for dir in "$prefix" "$data" "$data/backup" "$data/backup/ring" "$chroot" "$cfg" "$cfg/ring"; do
    [ -d "$dir" ] || act "create $dir" mkdir -m 755 "$dir"
  done
  if [ -L "$chroot/$ring_peer" ] || { [ -e "$chroot/$ring_peer" ] && [ ! -d "$chroot/$ring_peer" ]; }; then
    die 1 "$chroot/$ring_peer is not a directory; move it away and run again"
  elif [ ! -d "$chroot/$ring_peer" ]; then
    act "create $chroot/$ring_peer, the one directory $ring_user may write (0700)" make_ring_dir "$chroot/$ring_peer"
  elif [ "$(owner_of "$chroot/$ring_peer")" != "$ring_user" ]; then
    die 1 "$chroot/$ring_peer belongs to $(owner_of "$chroot/$ring_peer"), not $ring_user: 'chown -R $ring_user $chroot/$ring_peer' if it holds $ring_peer's repository"
  fi

  ring_line="restrict,command=\"internal-sftp -d /$ring_peer\" $ring_type $ring_blob ${ring_comment:-}"
  ring_line=${ring_line% }
  if [ "$(cat "$ring_keys" 2>/dev/null)" != "$ring_line" ]; then
    act "write $ring_keys: $ring_peer's key, sftp only" write_text "$ring_keys" 644 <<<"$ring_line"
  fi
  previous=""
  [ ! -f "$sshd_dropin" ] || previous=$(cat "$sshd_dropin")
  if [ "$previous" != "$(ring_block)" ]; then
    act "write $sshd_dropin: $ring_user chrooted into $chroot, sftp only" write_text "$sshd_dropin" 644 < <(ring_block)
    apply_sshd "$previous"
  fi
  if [ $dry_run -eq 1 ]; then
    [ $changes -gt 0 ] || say "nothing to change: $ring_peer's ring account is in place"
    say "dry run: nothing was changed"
  elif [ $changes -eq 0 ]; then
    say "nothing to change: $ring_peer's ring account is in place"
  fi
  [ "$ring_user" = axe-ring ] || note=" (set backup.ring.repository to it there: its default account is axe-ring)"
  say "$ring_peer's machine backs up here as sftp:$ring_user@<this machine>:/$ring_peer${note:-}"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Customer and fleet
# ---------------------------------------------------------------------------------------------
installed_customer=""
if [ -f "$cfg/appliance.yaml" ]; then
  installed_customer=$(sed -n 's/^customer:[[:space:]]*\([a-z0-9_]*\).*/\1/p' "$cfg/appliance.yaml" | head -n 1)
  [ -z "$customer" ] || [ -z "$installed_customer" ] || [ "$customer" = "$installed_customer" ] ||
    die 3 "$prefix is already installed for customer '$installed_customer', not '$customer'; use another --prefix, or --uninstall --purge first"
  customer=${customer:-$installed_customer}
fi
[ -n "$customer" ] || die 2 "--customer NAME is required on a first install (a name from customers.yaml)"

if [ -z "$customers_src" ]; then
  if [ -f "$HERE/customers.yaml" ]; then customers_src="$HERE/customers.yaml"; else customers_src="$cfg/customers.yaml"; fi
fi
[ -f "$customers_src" ] || die 3 "no customers.yaml: pass --customers FILE (the fleet file from the repository)"
grep -qE "^[[:space:]]*-?[[:space:]]*name:[[:space:]]*['\"]?${customer}['\"]?[[:space:]]*(#.*)?$" "$customers_src" ||
  die 3 "customer '$customer' is not in $customers_src; add it there first (docs/operations.md, Onboard a new customer)"

# ---------------------------------------------------------------------------------------------
# Binary: find it, check its sha256, check it runs here
# ---------------------------------------------------------------------------------------------
if [ -z "$binary" ]; then
  for dir in "$HERE" "$HERE/dist"; do
    for name in "axe-appliance-$target" axe-appliance; do
      if [ -f "$dir/$name" ] && [ -f "$dir/SHA256SUMS" ]; then binary="$dir/$name"; break 2; fi
    done
  done
  if [ -z "$binary" ] && [ -x "$installed_bin" ]; then binary=$installed_bin; fi
  [ -n "$binary" ] || die 5 "no release next to install.sh: expected axe-appliance-$target (or axe-appliance) with SHA256SUMS in $HERE or $HERE/dist; build one with 'npm run build -- --all', or pass --binary PATH"
fi
[ -f "$binary" ] || die 5 "--binary $binary: no such file"
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
got_sha=$(sha256_of "$binary")
sums="$(dirname "$binary")/SHA256SUMS"
if [ -z "$want_sha" ] && [ "$binary" != "$installed_bin" ] && [ -f "$sums" ]; then
  want_sha=$(awk -v f="$(basename "$binary")" '$2 == f || $2 == "*" f { print $1 }' "$sums" | head -n 1)
  [ -n "$want_sha" ] || die 5 "$sums does not list $(basename "$binary")"
fi
if [ -n "$want_sha" ]; then
  [ "$got_sha" = "$want_sha" ] || die 5 "$binary: sha256 is $got_sha, expected $want_sha; the file is damaged or not the release you meant"
  say "binary $binary: sha256 $got_sha checked"
elif [ "$binary" != "$installed_bin" ]; then
  warn "$binary: no SHA256SUMS beside it and no --sha256: installing it unchecked (sha256 $got_sha)"
fi
cp "$binary" "$work/axe-appliance"
chmod 755 "$work/axe-appliance"
version=$(AXE_CONFIG_DIR="" "$work/axe-appliance" --version 2>&1) || die 5 "$binary does not run on this $target machine: $version"
case "$version" in
  "axe-appliance "*"bun-$target"*) ;;
  *) die 5 "$binary is not the $target build of axe-appliance (it says: $version)" ;;
esac
say "$version"

# ---------------------------------------------------------------------------------------------
# Config, staged and validated by the binary itself before anything is installed
# ---------------------------------------------------------------------------------------------
stage="$work/config"
mkdir -p "$stage"
cp "$customers_src" "$stage/customers.yaml"
if [ -f "$cfg/appliance.yaml" ]; then
  if [ $no_services -eq 0 ] && grep -qE '^[[:space:]]+service_backend:[[:space:]]*child' "$cfg/appliance.yaml"; then
    die 3 "$cfg/appliance.yaml says deploy.service_backend: child (a test install, run by \`up\`): deploys would not restart the $backend services; remove that line, then run install.sh again"
  fi
  cp "$cfg/appliance.yaml" "$stage/appliance.yaml"
  if [ -n "$database_url$proxy_port$blue_port$green_port$metrics_port" ]; then
    warn "$cfg/appliance.yaml exists and is never rewritten: --database-url and the port options only shape a new one; edit it instead"
  fi
else
  {
    echo "# appliance.yaml: this machine, written by install.sh. Every key is in appliance.example.yaml."
    echo "customer: $customer"
    echo "data_dir: $data"
    echo "secrets_dir: secrets"
    run_as=""
    if [ -n "$database_url" ]; then
      printf 'database:\n  url: %s\n  password_file: database.password\n' "$database_url"
    elif [ "$platform" = darwin ]; then
      # Postgres refuses to run as root; macOS has no `postgres` account, so the embedded cluster runs as the deploy user.
      printf 'database:\n  embedded_run_as: %s\n' "$deploy_user"
      run_as=$deploy_user
    else
      run_as=postgres
    fi
    # blue and green, which the internet reaches, run as the cluster's account, not root (decision 79)
    if [ -n "$run_as" ] && id -u "$run_as" >/dev/null 2>&1; then
      printf 'frame:\n  run_as: %s\n' "$run_as"
      [ -z "$blue_port$green_port" ] || printf '  ports: { blue: %s, green: %s }\n' "${blue_port:-3710}" "${green_port:-3711}"
    elif [ -n "$blue_port$green_port" ]; then
      printf 'frame:\n  ports: { blue: %s, green: %s }\n' "${blue_port:-3710}" "${green_port:-3711}"
    fi
    if [ -n "$proxy_port$metrics_port" ]; then
      echo "proxy:"
      [ -z "$proxy_port" ] || printf '  listen: 127.0.0.1:%s\n' "$proxy_port"
      case "$metrics_port" in "") ;; off) echo "  metrics_listen: off" ;; *) printf '  metrics_listen: 127.0.0.1:%s\n' "$metrics_port" ;; esac
    fi
    # no init system runs it: `axe-appliance up` does, and the receiver restarts its colors the same way
    [ $no_services -eq 0 ] || printf 'deploy:\n  service_backend: child\n'
    # the ring connects to the neighbour's ring account with a key of its own, made below
    printf 'backup:\n  ring:\n    identity_file: ring_ed25519\n'
  } >"$stage/appliance.yaml"
fi
validated=0
AXE_CONFIG_DIR="" "$work/axe-appliance" services print --backend "$backend" --config "$stage" >/dev/null 2>"$work/validate.err" || validated=$?
if [ $validated -ne 0 ]; then
  sed "s|$stage/|$cfg/|g; s|^|$PROG: |" "$work/validate.err" >&2
  [ $validated -eq 3 ] || die 5 "$binary cannot render its services (exit $validated): it is older than this install.sh; use the binary from the same release"
  die 3 "the configuration for customer '$customer' is invalid (see above); nothing was installed"
fi
say "customer $customer: appliance.yaml and customers.yaml validated"

# Ports: free, or already answered by this appliance (a re-run on a live machine).
doctor_json=$(AXE_CONFIG_DIR="" "$work/axe-appliance" doctor --json --config "$stage" 2>/dev/null || true)
taken=$(printf '%s' "$doctor_json" | grep -oE '"name":"port [0-9]+ \([a-z ]+\)","ok":false' | sed -E 's/"name":"(port [0-9]+ \([a-z ]+\))".*/\1/' || true)
if [ -n "$taken" ]; then
  die 6 "$(printf '%s' "$taken" | paste -sd, - | sed 's/,/, /g') in use by another program or another axe-appliance install (doctor says which); find it with 'lsof -nP -iTCP:PORT -sTCP:LISTEN', or pick other ports with --proxy-port/--blue-port/--green-port"
fi

# Deploy user: checked now so a missing account fails before anything is written.
keys_file=""
if [ $no_deploy_key -eq 0 ] && [ -n "$deploy_key" ]; then
  [ -f "$deploy_key" ] || die 2 "--deploy-key $deploy_key: no such file"
  read -r key_type key_blob key_comment <"$deploy_key" || true
  if ! [[ "${key_type:-}" =~ ^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp[0-9]+|sk-ssh-ed25519@openssh.com)$ ]] || [ -z "${key_blob:-}" ]; then
    die 2 "--deploy-key $deploy_key is not an ssh public key (expected 'ssh-ed25519 AAAA... comment')"
  fi
  keys_file=$authorized_keys
  if [ -z "$keys_file" ] && [ $no_services -eq 0 ]; then
    home=$(home_of "$deploy_user" || true)
    if [ -z "$home" ]; then
      if [ "$platform" = darwin ]; then
        die 3 "no account '$deploy_user' for deploys: create it (System Settings > Users & Groups, or 'sudo sysadminctl -addUser $deploy_user'), allow it Remote Login, and run install.sh again"
      fi
      die 3 "no account '$deploy_user' for deploys: create it with 'sudo useradd --create-home --shell /bin/sh $deploy_user' and run install.sh again"
    fi
    keys_file="$home/.ssh/authorized_keys"
  fi
  [ -z "$keys_file" ] || check_keys_path "$keys_file"
  if [ -n "$keys_file" ] && uses_sudo && ! command -v sudo >/dev/null 2>&1; then
    die 3 "sudo is not installed, and the deploy key's forced command runs the receiver through 'sudo -n' (it restarts root's services): install it ('apt-get install sudo'), then run install.sh again"
  fi
  if [ -n "$keys_file" ] && ! uses_sudo && [ "$deploy_user" != "$(id -un)" ]; then
    warn "the receiver will run as $deploy_user without sudo (--no-services) and must write $data: pass --deploy-user $(id -un) for a test install, or give $deploy_user that directory"
  fi
fi

# ---------------------------------------------------------------------------------------------
# The tree
# ---------------------------------------------------------------------------------------------
for dir in "$prefix" "$bin_dir" "$cfg" "$data"; do
  [ -d "$dir" ] || act "create $dir" mkdir -p -m 755 "$dir"
done
# secrets, and the services' logs (who called which tool, from where): no other account reads them
for dir in "$secrets" "$data/logs"; do
  if [ ! -d "$dir" ]; then
    act "create $dir (0700)" mkdir -p -m 700 "$dir"
  # keys init and services install let frame.run_as's group through (0710) to the files they gave it (decision 79)
  elif [ "$(mode_of "$dir")" != 700 ] && [ "$(mode_of "$dir")" != 710 ]; then
    act "set $dir to mode 0700" chmod 700 "$dir"
  fi
done

if [ ! -f "$installed_bin" ]; then
  act "install the binary to $installed_bin" install_file "$work/axe-appliance" "$installed_bin" 755
elif ! cmp -s "$work/axe-appliance" "$installed_bin"; then
  act "replace $installed_bin with $(basename "$binary") (sha256 $got_sha); blue and green keep their releases until a deploy" install_file "$work/axe-appliance" "$installed_bin" 755
fi
if ! cmp -s "$stage/customers.yaml" "$cfg/customers.yaml" 2>/dev/null; then
  act "install $cfg/customers.yaml from $customers_src" install_file "$stage/customers.yaml" "$cfg/customers.yaml" 644
fi
if [ ! -f "$cfg/appliance.yaml" ]; then
  act "write $cfg/appliance.yaml for customer $customer" install_file "$stage/appliance.yaml" "$cfg/appliance.yaml" 644
fi
if [ -n "$database_password_file" ]; then
  [ -f "$database_password_file" ] || die 2 "--database-password-file $database_password_file: no such file"
  if [ ! -f "$secrets/database.password" ]; then
    act "copy the database password to $secrets/database.password (0600)" install_file "$database_password_file" "$secrets/database.password" 600
  elif ! cmp -s "$database_password_file" "$secrets/database.password"; then
    warn "kept the existing $secrets/database.password: a secret file is never overwritten (replace it by hand to change it)"
  fi
fi

# From here on the installed binary and config do the work; a dry run on a fresh machine uses the staged ones.
run_bin=$installed_bin run_cfg=$cfg
if [ ! -x "$installed_bin" ] || [ ! -f "$cfg/appliance.yaml" ]; then run_bin="$work/axe-appliance" run_cfg=$stage; fi
axe() { AXE_CONFIG_DIR="" "$run_bin" "$@"; }

# Keys: master key (PII), token key and audit key (anchors); keys init never overwrites them.
if [ $dry_run -eq 1 ]; then
  say "would run: axe-appliance keys init (creates master.key, token.key and audit.key in $secrets when missing)"
else
  out=$(axe keys init --config "$run_cfg") || die 1 "keys init failed (see above)"
  printf '%s\n' "$out" | grep -E '^(created|gave)' | sed "s/^/$PROG: /" || true
  count_changes "$out"
fi

# The ring's ssh key: what the next machine in the ring lets in (its install.sh --ring-peer --ring-key); never overwritten.
ring_identity="$secrets/ring_ed25519"
if [ -e "$ring_identity" ]; then
  :
elif ! command -v ssh-keygen >/dev/null 2>&1; then
  warn "ssh-keygen is not installed, so the ring has no key of its own: install OpenSSH's client, then run install.sh again"
else
  # both halves 0600: doctor holds every file in secrets to that
  make_ring_identity() { ssh-keygen -q -t ed25519 -N "" -C "axe-ring@$customer" -f "$ring_identity" && chmod 600 "$ring_identity.pub"; }
  act "create the ring's ssh key $ring_identity (ed25519, 0600)" make_ring_identity
fi

# Backups: restic repositories and their passwords; backup init never overwrites a password.
if ! command -v restic >/dev/null 2>&1; then
  if [ "$platform" = darwin ]; then how="brew install restic"; else how="sudo apt-get install restic"; fi
  warn "restic is not installed, so backups are not set up: run '$how', then '$installed_bin backup init --config $cfg'"
elif [ $dry_run -eq 1 ]; then
  say "would run: axe-appliance backup init (local repository under $data, passwords in $secrets when missing)"
else
  status=0
  out=$(axe backup init --config "$run_cfg" </dev/null 2>"$work/backup.err") || status=$?
  count_changes "$out"
  printf '%s\n' "$out" | grep -E '^[a-z]+: created' | sed "s/^/$PROG: backup /" || true
  case $status in
    0) ;;
    8) warn "backup init: some tiers are not reachable yet (the first backup run retries them): $(tr '\n' ' ' <"$work/backup.err")" ;;
    *) warn "backup init failed (exit $status): $(tr '\n' ' ' <"$work/backup.err"); fix it, then run '$installed_bin backup init --config $cfg'" ;;
  esac
fi

# Services: each color's first release, then the unit files (and with services, load them).
dry=()
[ $dry_run -eq 1 ] && dry=(--dry-run)
out=$(axe services install --backend "$backend" ${unit_dir_args[@]+"${unit_dir_args[@]}"} ${dry[@]+"${dry[@]}"} --binary "$installed_bin" --config "$run_cfg") ||
  die 1 "installing the $backend services failed (see above)"
printf '%s\n' "$out" | grep -v '^unchanged' | sed "s/^/$PROG: /" || true
count_changes "$out"

# Deploy key and its forced command.
if [ $no_deploy_key -eq 1 ]; then
  :
elif [ -z "$deploy_key" ]; then
  say "no --deploy-key: add the operator's deploy key by hand (docs/operations.md, Deploy key), as this line in ~$deploy_user/.ssh/authorized_keys:"
  say "  restrict,command=\"$(forced_command operator)\" ssh-ed25519 AAAA... operator"
elif [ -z "$keys_file" ]; then
  say "deploy key: skipped with --no-services (pass --authorized-keys FILE to write the line anyway)"
else
  who=$(printf '%s' "${key_comment:-operator}" | tr -c 'A-Za-z0-9@._-' '_' | cut -c1-64)
  line="restrict,command=\"$(forced_command "${who:-operator}")\" $key_type $key_blob ${key_comment:-}"
  line=${line% }
  check_keys_path "$keys_file"
  if [ -f "$keys_file" ] && grep -q -x -F "$line" "$keys_file"; then
    :
  else
    act "let the deploy key run only the receiver: forced command in $keys_file" edit_keys "$keys_file" "$line"
  fi
  if [ $no_services -eq 0 ] && [ "$deploy_user" != root ]; then
    sudoers_text >"$work/sudoers"
    if ! cmp -s "$work/sudoers" "$sudoers" 2>/dev/null; then
      if command -v visudo >/dev/null 2>&1; then visudo -cqf "$work/sudoers" || die 1 "the sudoers rule did not pass visudo -c"; fi
      act "allow $deploy_user to run the receiver as root: $sudoers" install_file "$work/sudoers" "$sudoers" 440
    fi
  fi
fi

# Postgres and restic: say what is missing and how to get it.
if [ -z "$database_url" ] && ! grep -qE '^[[:space:]]+url:' "$run_cfg/appliance.yaml"; then
  if ! command -v initdb >/dev/null 2>&1 && ! ls /opt/homebrew/opt/postgresql@*/bin/initdb /usr/local/opt/postgresql@*/bin/initdb /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$platform" = darwin ]; then how="brew install postgresql@17"; else how="sudo apt-get install postgresql"; fi
    warn "no Postgres server binaries for the embedded database: run '$how' (or set database.url in $cfg/appliance.yaml)"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Doctor and next steps
# ---------------------------------------------------------------------------------------------
if [ $dry_run -eq 1 ]; then
  [ $changes -gt 0 ] || say "nothing to change: $prefix is installed for customer $customer"
  say "dry run: nothing was changed"
  exit 0
fi
say "doctor:"
doctor_status=0
doctor_out=$(axe doctor --config "$cfg" 2>&1) || doctor_status=$?
printf '%s\n' "$doctor_out" | sed 's/^/  /'
if [ $changes -eq 0 ]; then
  say "nothing to change: $prefix is installed for customer $customer"
else
  say "installed axe-appliance for customer $customer in $prefix ($changes changes)"
fi
# the port the installed appliance.yaml says (a re-run without --proxy-port must not print the default)
listen_port=$(awk '/^proxy:/ { p = 1; next } /^[^[:space:]#]/ { p = 0 } p && /^[[:space:]]+listen:/ { sub(/.*:/, ""); gsub(/[^0-9]/, ""); print; exit }' "$cfg/appliance.yaml")
run_step="from the operator's laptop: axe-appliance deploy push --to $customer"
[ $no_services -eq 0 ] || run_step="run it: $installed_bin up --config $cfg (Ctrl-C stops it); then $run_step"
cat <<EOF
$PROG: next:
  1. keep a copy of $secrets (master.key, token.key, restic-*.password) in the operator's password manager
  2. in the Cloudflare Tunnel, publish unix:$data/run/tunnel.sock as https://<customer host>
     (cloudflared on this host, as root: only root can use or take that socket); from Docker Desktop,
     publish http://127.0.0.1:${listen_port:-3712} as https://<customer host> (any account can take that port while the proxy restarts)
  3. $run_step
  4. check: $installed_bin doctor --config $cfg ; $installed_bin backup status --config $cfg
EOF
if [ -f "$ring_identity.pub" ]; then
  say "ring: on the next machine in the ring, 'sudo ./install.sh --ring-peer $customer --ring-key FILE', FILE holding:"
  printf '  %s\n' "$(cat "$ring_identity.pub")"
  grep -qE '^[[:space:]]+identity_file:' "$cfg/appliance.yaml" ||
    say "ring: add 'identity_file: ring_ed25519' under backup.ring in $cfg/appliance.yaml to use it (until then ssh offers root's own keys)"
fi
if [ $doctor_status -ne 0 ]; then
  warn "doctor found problems (above, each with its fix); run install.sh again once they are fixed"
  exit 10
fi
