#!/usr/bin/env bash
# Turns TCP quick ACKs on (or off) for loopback routes.
#
# Why: Debian's vpcd writes each message to a virtual card as two writes without TCP_NODELAY,
# so a virtual card that does not ACK at once waits for its own delayed ACK — about 44 ms per
# APDU. Node cannot set TCP_QUICKACK on a socket; root can set it on the loopback routes, which
# removes the stall for every process. Only the test rig and the benchmark need this.
#
# Usage: scripts/loopback-quickack.sh on|off   (needs root; prints what it did)
set -euo pipefail
mode=${1:-on}
case "$mode" in
  on) extra=(quickack 1) ;;
  off) extra=() ;;
  *) echo "usage: $0 on|off" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "loopback-quickack: needs root; leaving routes unchanged (vpcd APDUs will cost ~44 ms each)" >&2
  exit 0
fi
ip route change local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1 table local "${extra[@]}"
ip route change local 127.0.0.1 dev lo proto kernel scope host src 127.0.0.1 table local "${extra[@]}"
echo "loopback-quickack: quick ACKs $mode for local 127.0.0.0/8 and 127.0.0.1 (ip route ... table local${extra:+ quickack 1})"
