#!/usr/bin/env bash
# Removes what scripts/install.sh added, and nothing else: it replays the install manifest
# (/usr/lib/cardbridge/install-manifest) backwards, browser policies included (cardbridge browsers
# remove). In files it did not create only its own marked lines go ("# cardbridge-managed" in
# /etc/hosts).
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: sudo scripts/uninstall.sh [--root DIR]

Removes what scripts/install.sh installed, and nothing else, by replaying its manifest
(/usr/lib/cardbridge/install-manifest) backwards: stops and disables the service, takes the
local CA out of the stores it was put in, removes the /etc/hosts line marked
"# cardbridge-managed" (no other line), the unit, the program, the state directory
(CA, certificate, allow-list), and the user and directories install.sh created.
/etc/cardbridge/config.json is kept if it was edited; directories holding files of the
administrator's own are kept. Each kept item is named.

  --root DIR   uninstall from the tree an "install.sh --root DIR" made; default: / (needs root)
  -h, --help   this text

Example: sudo /usr/lib/cardbridge/scripts/uninstall.sh
USAGE
}

ROOT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --root=*) ROOT="${1#--root=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "cardbridge uninstall: $*"; }
die() { echo "cardbridge uninstall: $*" >&2; exit 1; }

if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "$ROOT does not exist"
  ROOT="$(cd "$ROOT" && pwd)"
else
  [ "$(id -u)" -eq 0 ] || die "run it as root (sudo $0), or use --root DIR"
fi

APP="$ROOT/usr/lib/cardbridge"
MANIFEST="$APP/install-manifest"
HOSTS_MARK="# cardbridge-managed"
# Installs before the mark existed wrote exactly this line.
LEGACY_HOSTS_LINE="127.0.0.1 iccert.nhi.gov.tw # cardbridge"
[ -f "$MANIFEST" ] || die "no install manifest at $MANIFEST: cardbridge was not installed by install.sh here (nothing removed)"
mapfile -t RECORDS < "$MANIFEST"

# Only ever touch paths inside the root (a damaged manifest must not reach elsewhere).
inside() { case "$1" in "$ROOT"/*) return 0 ;; *) [ -z "$ROOT" ] && [ "${1:0:1}" = / ];; esac; }

has() { local r; for r in "${RECORDS[@]}"; do [ "$r" = "$1" ] && return 0; done; return 1; }
values() { local r; for r in "${RECORDS[@]}"; do [ "${r%% *}" = "$1" ] && echo "${r#* }"; done; return 0; }

# 1. Stop the service first, so nothing serves with certificates we are about to remove.
if has "service cardbridge" && [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  say "stopping and disabling the service"
  systemctl disable --now cardbridge.service || true
fi

# 2. Take the CA out of every store install.sh trusted it in (needs the installed CLI).
if [ -n "$(values trust)" ] && [ -f "$APP/bin/cardbridge.js" ]; then
  args=()
  store="$(values trust-store | tail -n1)"
  if [ -n "$store" ] && [ "$store" != default ]; then args+=(--system-store "$store"); fi
  while read -r h; do [ -n "$h" ] && args+=(--home "$h"); done < <(values trust-home)
  say "removing the local CA from the trust stores"
  node "$APP/bin/cardbridge.js" certs untrust "${args[@]}" || say "WARNING: could not remove the CA everywhere (see above)"
fi

# 2b. Take away the browser policies install.sh wrote (cardbridge browsers remove).
if [ -n "$(values browsers)" ] && [ -f "$APP/bin/cardbridge.js" ]; then
  say "removing the browser policies"
  CARDBRIDGE_BROWSERS_ROOT="$ROOT" node "$APP/bin/cardbridge.js" browsers remove --state-dir "$(values browsers | tail -n1)" \
    || say "WARNING: could not remove the browser policies (see above)"
fi

# 3. Replay the rest backwards.
for (( i=${#RECORDS[@]}-1; i>=0; i-- )); do
  kind="${RECORDS[$i]%% *}"
  path="${RECORDS[$i]#* }"
  case "$kind" in
    hosts)
      [ -f "$path" ] && inside "$path" || continue
      if grep -q " $HOSTS_MARK\$" "$path" || grep -qxF "$LEGACY_HOSTS_LINE" "$path"; then
        say "removing the hosts entry from $path"
        tmp="$(mktemp)"
        grep -v " $HOSTS_MARK\$" "$path" | grep -vxF "$LEGACY_HOSTS_LINE" > "$tmp" || true
        if has "hosts-newline $path" && [ -s "$tmp" ] && tail -n1 "$path" | grep -q " $HOSTS_MARK\$"; then
          # install.sh added a newline to a file that had none at its end, and our line is still
          # the last one: take the newline away again.
          head -c -1 "$tmp" > "$tmp.2" && mv "$tmp.2" "$tmp"
        fi
        cat "$tmp" > "$path"   # in place: keeps owner, mode and bind mounts
        rm -f "$tmp"
      fi ;;
    hosts-file)
      # A hosts file install.sh created: removed only if nothing of the administrator's is in it.
      inside "$path" && [ -f "$path" ] || continue
      if [ -s "$path" ]; then say "keeping $path: it holds lines that install.sh did not put there"; else rm -f "$path"; fi ;;
    config)
      inside "$path" && [ -f "$path" ] || continue
      if [ "$(cat "$path")" = "{}" ]; then rm -f "$path"; else say "keeping $path: it was edited"; fi ;;
    nssdb)
      # An NSS database install.sh created: remove it only if nothing else was stored in it since.
      inside "$path" && [ -d "$path/nssdb" ] || continue
      if command -v certutil >/dev/null && [ -z "$(certutil -L -d "sql:$path/nssdb" 2>/dev/null | tail -n +4 | grep -v '^[[:space:]]*$' || true)" ]; then
        rm -rf "$path/nssdb"
        rmdir "$path" 2>/dev/null || true
      else
        say "keeping $path/nssdb: it holds other certificates now"
      fi ;;
    file)
      inside "$path" || continue
      if [ -e "$path" ] || [ -L "$path" ]; then say "removing $path"; rm -f "$path"; fi ;;
    tree)
      inside "$path" || continue
      # (the manifest inside the program directory was read into memory above)
      if [ -d "$path" ]; then say "removing $path"; rm -rf "$path"; fi ;;
    dir)
      inside "$path" || continue
      if [ -d "$path" ]; then
        rmdir "$path" 2>/dev/null || say "keeping $path: it holds files that install.sh did not put there"
      fi ;;
    user)
      if [ -z "$ROOT" ] && getent passwd "$path" >/dev/null; then say "removing the user $path"; userdel "$path" || true; fi ;;
    service)
      if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi ;;
    hosts-newline|trust|trust-home|trust-store|browsers) ;;
    *) say "WARNING: unknown manifest entry \"${RECORDS[$i]}\" ignored" ;;
  esac
done

say "done"
