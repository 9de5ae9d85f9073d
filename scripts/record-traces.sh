#!/bin/sh
# Records the fixture traces in test/fixtures/traces from the project's virtual cards (and the
# emulated SAM), with the same `cardbridge trace` a citizen runs against a real card. Run it
# (`npm run traces:record`) whenever a driver or a virtual card changes what goes over the
# wire, then run the replay tests (test/unit/trace/fixtures-replay.test.ts) and commit both.
set -eu
cd "$(dirname "$0")/.."
npm run build >/dev/null
out=test/fixtures/traces
mkdir -p "$out"
trace() { node bin/cardbridge.js trace "$@" >/dev/null; }
# The virtual MOICA cards' PIN for recordings (src/trace/virtual-cards.ts, VIRTUAL_TRACE_PIN);
# it is removed from the traces like any other.
pin=86420975
trace nhi-read --virtual nhi --out "$out/nhi-read.json"
trace nhi-hsign --virtual nhi --out "$out/nhi-hsign.json"
trace moica-read --virtual moica-gen1 --out "$out/moica-gen1-read.json"
trace moica-read --virtual moica-gen2 --out "$out/moica-gen2-read.json"
echo "$pin" | trace moica-sign --virtual moica-gen1 --pin-stdin --out "$out/moica-gen1-sign.json"
echo "$pin" | trace moica-sign --virtual moica-gen2 --pin-stdin --out "$out/moica-gen2-sign.json"
echo "Recorded $(ls "$out"/*.json | wc -l) traces in $out"
