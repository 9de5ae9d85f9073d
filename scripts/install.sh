#!/usr/bin/env bash
# Installs cardbridge as a hardened system service (see docs/operations.md):
#   program      /usr/lib/cardbridge (bin, dist, production node_modules, docs), /usr/local/bin/cardbridge
#   service      /etc/systemd/system/cardbridge.service, system user "cardbridge"
#   runtime      /usr/lib/cardbridge/node, a link to the node (20 or later) running this script
#   state        /var/lib/cardbridge (local CA + server certificate)
#   config       /etc/cardbridge/config.json ("{}"; docs/configuration.md), kept if edited
#   trust        the local CA in the system store and the NSS databases (cardbridge certs trust)
#   hosts        "127.0.0.1 iccert.nhi.gov.tw # cardbridge-managed" in /etc/hosts
#   browsers     managed policies for installed browsers (cardbridge browsers allow)
# Everything it creates is recorded in /usr/lib/cardbridge/install-manifest, which
# scripts/uninstall.sh replays backwards, so uninstalling removes exactly that and nothing else.
# Idempotent: running it again upgrades the program and keeps the existing certificates.
# On Debian/Ubuntu, prefer the package (npm run package:deb; docs/operations.md).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: sudo scripts/install.sh [--root DIR] [--no-start]

Installs cardbridge from this built checkout ("npm install" first) as a system service:
/usr/lib/cardbridge (program; "node" links to the Node.js 20+ running this script),
/usr/local/bin/cardbridge, /etc/systemd/system/cardbridge.service, the user cardbridge,
/var/lib/cardbridge (local CA), /etc/cardbridge/config.json, the CA trusted in the system
store and NSS databases, and "127.0.0.1 iccert.nhi.gov.tw # cardbridge-managed" in
/etc/hosts. Everything it creates is recorded in /usr/lib/cardbridge/install-manifest, so
scripts/uninstall.sh removes exactly that. Running it again upgrades in place.

  --root DIR   install into a throw-away tree DIR instead of /: no user, no systemctl, no
               update-ca-certificates (for tests); default: / (needs root)
  --no-start   enable the service but do not start it now; default: enable and start
  -h, --help   this text

Example: sudo scripts/install.sh && cardbridge doctor
USAGE
}

ROOT=""
START=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --root=*) ROOT="${1#--root=}"; shift ;;
    --no-start) START=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "cardbridge install: $*"; }
die() { echo "cardbridge install: $*" >&2; exit 1; }

SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "$ROOT" ]; then
  mkdir -p "$ROOT"
  ROOT="$(cd "$ROOT" && pwd)"
else
  [ "$(id -u)" -eq 0 ] || die "run it as root (sudo $0), or use --root DIR for a throw-away tree"
fi

[ -f "$SOURCE/dist/cli/main.js" ] || die "$SOURCE is not built: run \"npm install\" (or \"npm run build\") there first"
command -v node >/dev/null || die "node is not installed (Node.js 20 or later is needed)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node.js $(node -v) is too old; cardbridge needs 20 or later"
if [ -z "$ROOT" ]; then
  case "$(command -v node)" in
    /usr/local/sbin/*|/usr/local/bin/*|/usr/sbin/*|/usr/bin/*) ;;
    *) die "node is at $(command -v node), outside systemd's default PATH; link it into /usr/local/bin first" ;;
  esac
fi

APP="$ROOT/usr/lib/cardbridge"
MANIFEST="$APP/install-manifest"
STATE="$ROOT/var/lib/cardbridge"
CONF="$ROOT/etc/cardbridge"
CONFIG="$CONF/config.json"
UNIT="$ROOT/etc/systemd/system/cardbridge.service"
LINK="$ROOT/usr/local/bin/cardbridge"
HOSTS="$ROOT/etc/hosts"
HOSTS_LINE="127.0.0.1 iccert.nhi.gov.tw # cardbridge-managed"
if [ -n "$ROOT" ]; then STORE="$ROOT/usr/local/share/ca-certificates"; else STORE="default"; fi

# ——— the manifest: one "kind path" line per thing this script created, in creation order ———
declare -a RECORDS=()
if [ -f "$MANIFEST" ]; then mapfile -t RECORDS < "$MANIFEST"; fi
record() {
  local line="$1 $2" r
  for r in "${RECORDS[@]+"${RECORDS[@]}"}"; do [ "$r" = "$line" ] && return 0; done
  RECORDS+=("$line")
}
flush_manifest() {
  [ -d "$APP" ] || return 0
  printf '%s\n' "${RECORDS[@]+"${RECORDS[@]}"}" > "$MANIFEST.tmp" && mv "$MANIFEST.tmp" "$MANIFEST"
}
# Even a failed run leaves a manifest, so uninstall.sh can clean up a half-done install.
trap flush_manifest EXIT

# mkdir -p that records each directory it had to create (uninstall removes them if empty).
mkdir_tracked() {
  local dir="$1" missing=() d
  while [ ! -e "$dir" ]; do missing=("$dir" "${missing[@]+"${missing[@]}"}"); dir="$(dirname "$dir")"; done
  for d in "${missing[@]+"${missing[@]}"}"; do mkdir -m 0755 "$d"; record dir "$d"; done
}

# ——— program ———
say "installing the program into $APP"
mkdir_tracked "$(dirname "$APP")"
if [ ! -d "$APP" ]; then mkdir -m 0755 "$APP"; record tree "$APP"; fi
rm -rf "$APP/bin" "$APP/dist" "$APP/node_modules" "$APP/docs" "$APP/systemd" "$APP/scripts" "$APP/package.json"
cp -a "$SOURCE/bin" "$SOURCE/dist" "$SOURCE/package.json" "$APP/"
for extra in docs systemd scripts; do [ -d "$SOURCE/$extra" ] && cp -a "$SOURCE/$extra" "$APP/"; done
# Production dependencies only, exactly as installed in the checkout (no network needed).
mkdir -p "$APP/node_modules"
(cd "$SOURCE" && npm ls --omit=dev --all --parseable 2>/dev/null || true) | while read -r path; do
  case "$path" in "$SOURCE/node_modules/"*) ;; *) continue ;; esac
  rel="${path#"$SOURCE/"}"
  [ -e "$APP/$rel" ] && continue
  mkdir -p "$APP/$(dirname "$rel")"
  cp -a "$path" "$APP/$rel"
done
chmod -R u=rwX,go=rX "$APP"
chmod 0755 "$APP/bin/cardbridge.js"
mkdir_tracked "$(dirname "$LINK")"
if [ ! -L "$LINK" ] && [ ! -e "$LINK" ]; then ln -s /usr/lib/cardbridge/bin/cardbridge.js "$LINK"; record file "$LINK"; fi
# The unit runs /usr/lib/cardbridge/node (the Debian package ships a runtime there).
ln -sfn "$(readlink -f "$(command -v node)")" "$APP/node"
CLI=(node "$APP/bin/cardbridge.js")

# ——— user ———
if [ -z "$ROOT" ]; then
  if ! getent passwd cardbridge >/dev/null; then
    say "creating the system user cardbridge"
    nologin="$(command -v nologin || echo /usr/sbin/nologin)"
    useradd --system --user-group --home-dir /var/lib/cardbridge --no-create-home --shell "$nologin" \
      --comment "cardbridge smart-card bridge" cardbridge
    record user cardbridge
  fi
else
  say "--root: not creating the cardbridge user"
fi

# ——— state and configuration directories ———
for dir in "$STATE" "$CONF"; do
  mkdir_tracked "$(dirname "$dir")"
  if [ ! -d "$dir" ]; then
    mkdir "$dir"
    if [ "$dir" = "$CONF" ]; then record dir "$dir"; else record tree "$dir"; fi
  fi
done
chmod 0700 "$STATE"
chmod 0755 "$CONF"
# The unit passes --config /etc/cardbridge/config.json; "{}" means every default.
if [ ! -e "$CONFIG" ]; then printf '{}\n' > "$CONFIG"; chmod 0644 "$CONFIG"; record config "$CONFIG"; fi

# ——— certificates ———
say "creating the local CA and server certificate (kept if already valid)"
CARDBRIDGE_STATE_DIR="$STATE" "${CLI[@]}" certs init --state-dir "$STATE"
if [ -z "$ROOT" ]; then chown -R cardbridge:cardbridge "$STATE"; fi

# NSS databases of root and of the user who ran sudo; in --root mode, the tree's /root only.
declare -a HOMES=()
if [ -n "$ROOT" ]; then
  HOMES=("$ROOT/root")
  mkdir_tracked "$ROOT/root"
else
  HOMES=("${HOME:-/root}")
  if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    user_home="$(getent passwd "$SUDO_USER" | cut -d: -f6)"
    [ -n "$user_home" ] && [ -d "$user_home" ] && HOMES+=("$user_home")
  fi
fi
home_args=()
for h in "${HOMES[@]}"; do
  home_args+=(--home "$h")
  record trust-home "$h"
  # Remember an NSS database that only exists because we created it.
  [ -e "$h/.pki" ] || record nssdb "$h/.pki"
done
store_args=()
if [ "$STORE" != default ]; then mkdir_tracked "$STORE"; store_args=(--system-store "$STORE"); fi
record trust-store "$STORE"
record trust "$STATE"
say "trusting the local CA"
if ! "${CLI[@]}" certs trust --state-dir "$STATE" "${store_args[@]+"${store_args[@]}"}" "${home_args[@]}"; then
  say "WARNING: the CA is not trusted everywhere (see above); fix that, then run \"sudo cardbridge certs trust\""
fi

# ——— hosts entry ———
mkdir_tracked "$(dirname "$HOSTS")"
# A hosts file created here is removed by uninstall only if nothing but our line was put in it.
if [ ! -e "$HOSTS" ]; then : > "$HOSTS"; chmod 0644 "$HOSTS"; record hosts-file "$HOSTS"; fi
if grep -qxF "$HOSTS_LINE" "$HOSTS"; then
  say "hosts entry already present"
elif grep -vE '^[[:space:]]*#' "$HOSTS" | grep -qE '(^|[[:space:]])iccert\.nhi\.gov\.tw([[:space:]]|$)'; then
  say "NOTE: $HOSTS already has its own line for iccert.nhi.gov.tw; leaving it alone (it must point to 127.0.0.1)"
else
  say "adding \"$HOSTS_LINE\" to $HOSTS"
  # Rewrite in place (not rename): /etc/hosts is often a bind mount in containers.
  if [ -s "$HOSTS" ] && [ -n "$(tail -c1 "$HOSTS")" ]; then printf '\n' >> "$HOSTS"; record hosts-newline "$HOSTS"; fi
  printf '%s\n' "$HOSTS_LINE" >> "$HOSTS"
  record hosts "$HOSTS"
fi

# ——— browser policies (cardbridge browsers allow) ———
# Chrome/Chromium/Edge: the allowed sites may reach 127.0.0.1 without the Local Network Access
# prompt; Firefox: policies.json installs the local CA. Only browsers installed now get one.
record browsers "$STATE"
say "writing the browser policies"
if ! CARDBRIDGE_BROWSERS_ROOT="$ROOT" "${CLI[@]}" browsers allow --state-dir "$STATE"; then
  say "WARNING: the browser policies were not written (see above); fix that, then run \"sudo cardbridge browsers allow\""
fi

# ——— service ———
mkdir_tracked "$(dirname "$UNIT")"
[ -e "$UNIT" ] || record file "$UNIT"
install -m 0644 "$SOURCE/systemd/cardbridge.service" "$UNIT"
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  record service cardbridge
  if [ "$START" -eq 1 ]; then systemctl enable --now cardbridge.service; else systemctl enable cardbridge.service; fi
  say "service enabled; check it with: systemctl status cardbridge; cardbridge doctor"
elif [ -z "$ROOT" ]; then
  say "systemd is not running here: the unit is installed but not enabled"
else
  say "--root: unit written to $UNIT (not enabled)"
fi
flush_manifest
say "done"
