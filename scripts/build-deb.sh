#!/usr/bin/env bash
# Builds cardbridge_<version>_<arch>.deb with dpkg-deb from this built checkout (see
# docs/operations.md, "The Debian package"). The package holds:
#   /usr/lib/cardbridge/            the compiled app (bin, dist, docs, package.json), the
#                                   production node_modules (with the built pcsclite addon)
#   /usr/lib/cardbridge/node        a Node.js runtime: a copy of the node running this build,
#                                   which must be 20 or later (Debian 12's own nodejs is 18)
#   /usr/bin/cardbridge             the CLI on that runtime; cardbridge(1) made from its --help
#   /lib/systemd/system/cardbridge.service, /etc/cardbridge/config.json (a conffile, "{}")
#   /usr/share/doc/cardbridge/      copyright (cardbridge's and Node.js's licences), changelog
# and the maintainer scripts of packaging/deb/.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: npm run package:deb -- [--version VERSION] [--out DIR] [--compress xz|gzip|zstd|none]
       scripts/build-deb.sh [same options]

Builds cardbridge_<version>_<arch>.deb from this checkout (run "npm run build" first; the
npm script does). Needs dpkg-deb and Node.js 20 or later, whose binary is bundled.

  --version VERSION  package version (default: package.json's "version"); the bundled
                     package.json says the same, so "cardbridge --version" matches
  --out DIR          where to write the .deb (default: ./build)
  --compress TYPE    dpkg-deb compression (default xz; "none" is fastest, for tests)
  -h, --help         this text

Example: npm run package:deb && sudo apt-get install ./build/cardbridge_0.1.0_amd64.deb
USAGE
}

SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=""
OUT="$SOURCE/build"
COMPRESS=xz
while [ $# -gt 0 ]; do
  case "$1" in
    --version) VERSION="${2:?--version needs a value}"; shift 2 ;;
    --out) OUT="${2:?--out needs a directory}"; shift 2 ;;
    --compress) COMPRESS="${2:?--compress needs a type}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-deb.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "build-deb.sh: $*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb is not installed (apt-get install dpkg)"
command -v strip >/dev/null || die "strip is not installed (apt-get install binutils)"
[ -f "$SOURCE/dist/cli/main.js" ] || die "$SOURCE is not built: run \"npm run build\" first"
NODE="$(command -v node)" || die "node is not installed"
NODE="$(readlink -f "$NODE")"
node_major="$("$NODE" -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "the node to bundle ($NODE) is $("$NODE" -v); cardbridge needs 20 or later"
[ -n "$VERSION" ] || VERSION="$(node -p 'require(process.argv[1]).version' "$SOURCE/package.json")"
[[ "$VERSION" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "\"$VERSION\" is not a Debian version"
ARCH="$(dpkg --print-architecture)"
[ -d "$SOURCE/node_modules/pcsclite/build/Release" ] || die "the pcsclite addon is not built (apt-get install libpcsclite-dev, then npm rebuild pcsclite)"

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/cardbridge-deb.XXXXXX")"
chmod 0755 "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
APP="$STAGE/usr/lib/cardbridge"
mkdir -p "$APP" "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/etc/cardbridge" \
  "$STAGE/usr/share/doc/cardbridge" "$STAGE/usr/share/lintian/overrides" "$STAGE/DEBIAN"

# ——— the app ———
cp -a "$SOURCE/bin" "$SOURCE/docs" "$APP/"
# Compiled JavaScript only: no source maps or declarations at run time.
cp -a "$SOURCE/dist" "$APP/"
find "$APP/dist" -type f ! -name '*.js' -delete
node -e '
  const [file, out, version] = process.argv.slice(1);
  const p = JSON.parse(require("fs").readFileSync(file, "utf8"));
  const keep = { name: p.name, version, description: p.description, license: p.license, type: p.type, engines: p.engines, bin: p.bin, exports: p.exports, dependencies: p.dependencies, optionalDependencies: p.optionalDependencies };
  require("fs").writeFileSync(out, JSON.stringify(keep, null, 2) + "\n");
' "$SOURCE/package.json" "$APP/package.json" "$VERSION"
# Production dependencies exactly as installed in the checkout (no network). npm may print the
# checkout's own path or, when node_modules is a link, the real one: take both.
REAL_MODULES="$(readlink -f "$SOURCE/node_modules")"
(cd "$SOURCE" && npm ls --omit=dev --all --parseable 2>/dev/null || true) | while read -r path; do
  case "$path" in
    "$SOURCE/node_modules/"*) rel="${path#"$SOURCE/"}" ;;
    "$REAL_MODULES/"*) rel="node_modules/${path#"$REAL_MODULES/"}" ;;
    *) continue ;;
  esac
  [ -e "$APP/$rel" ] && continue
  mkdir -p "$APP/$(dirname "$rel")"
  cp -a "$path" "$APP/$rel"
done
[ -d "$APP/node_modules/pkijs" ] || die "production dependencies were not found (npm ls --omit=dev)"
# Only what runs: the addon's build left-overs (build/Release/pcsclite.node is the addon) and
# the modules' tests, examples, benchmarks, sources, maps, typings and Markdown go. Licences stay.
PCSC="$APP/node_modules/pcsclite"
find "$PCSC/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
find "$PCSC/build/Release" -mindepth 1 -maxdepth 1 ! -name pcsclite.node -exec rm -rf {} +
rm -rf "$PCSC/src" "$PCSC/binding.gyp"
find "$APP/node_modules" -depth -type d \( -name test -o -name tests -o -name __tests__ -o -name example -o -name examples \
  -o -name benchmark -o -name benchmarks -o -name .github -o -name .husky -o -name integration \) -exec rm -rf {} +
find "$APP/node_modules" -type f \( -name '*.map' -o -name '*.ts' -o -name '*.md' -o -name '*.markdown' -o -name '*.html' -o -name '.*' \) -delete
find "$APP" -depth -type d -empty -delete
# Only the runtime and the CLI are executable; the addon is a library (0644), stripped like
# Debian's own. The node binary is stripped of its symbol table (about half its size).
find "$APP" -type d -exec chmod 0755 {} +
find "$APP" -type f -exec chmod 0644 {} +
strip --strip-unneeded "$PCSC/build/Release/pcsclite.node"
install -m 0755 "$NODE" "$APP/node"
strip --strip-unneeded "$APP/node"
# /usr/bin/cardbridge and the unit run the entry point with the bundled runtime explicitly, so
# no "#!/usr/bin/env node" (which would find Debian's node 18, or none); main.js is imported.
sed -i '1{/^#!/d}' "$APP/bin/cardbridge.js" "$APP/dist/cli/main.js"

# ——— system integration ———
install -m 0755 "$SOURCE/packaging/deb/cardbridge.sh" "$STAGE/usr/bin/cardbridge"
mkdir -p "$STAGE/usr/share/man/man1"
"$NODE" "$SOURCE/packaging/deb/man-page.mjs" "$APP" "$VERSION" | gzip -9n > "$STAGE/usr/share/man/man1/cardbridge.1.gz"
install -m 0644 "$SOURCE/systemd/cardbridge.service" "$STAGE/lib/systemd/system/cardbridge.service"
install -m 0644 "$SOURCE/packaging/deb/config.json" "$STAGE/etc/cardbridge/config.json"
install -m 0644 "$SOURCE/packaging/deb/lintian-overrides" "$STAGE/usr/share/lintian/overrides/cardbridge"
for script in postinst prerm postrm; do install -m 0755 "$SOURCE/packaging/deb/$script" "$STAGE/DEBIAN/$script"; done
echo /etc/cardbridge/config.json > "$STAGE/DEBIAN/conffiles"

# ——— documentation ———
DOC="$STAGE/usr/share/doc/cardbridge"
NODE_LICENSE="$(dirname "$NODE")/../share/doc/nodejs/LICENSE"
[ -f "$NODE_LICENSE" ] || NODE_LICENSE=/usr/share/doc/nodejs/LICENSE
[ -f "$NODE_LICENSE" ] || die "Node.js's LICENSE was not found (looked next to $NODE and in /usr/share/doc/nodejs)"
gzip -9n < "$NODE_LICENSE" > "$DOC/nodejs-LICENSE.gz"
cat > "$DOC/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: cardbridge

Files: *
Copyright: 2025-2026 the cardbridge authors
License: MIT

Files: usr/lib/cardbridge/node
Copyright: Node.js contributors and the authors of the libraries built into it
License: Node.js
 The Node.js $("$NODE" -v) runtime, bundled because Debian 12's nodejs is 18 and cardbridge
 needs 20. Its licence, with those of the libraries built into it, is in
 /usr/share/doc/cardbridge/nodejs-LICENSE.gz.

Files: usr/lib/cardbridge/node_modules/*
Copyright: the authors of each module
License: various-free
 Each module's licence is in its LICENSE file and package.json "license" field.

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to deal
 in the Software without restriction, including without limitation the rights
 to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
 copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
 SOFTWARE.
COPYRIGHT
{
  echo "cardbridge ($VERSION) unstable; urgency=medium"
  echo
  echo "  * Built from the cardbridge repository by scripts/build-deb.sh."
  echo
  echo " -- cardbridge maintainers <cardbridge@example.invalid>  $(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git -C "$SOURCE" log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n > "$DOC/changelog.gz"

# ——— control ———
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: cardbridge
Version: $VERSION
Architecture: $ARCH
Maintainer: cardbridge maintainers <cardbridge@example.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
Depends: libc6, libgcc-s1, libstdc++6, libpcsclite1, adduser, ca-certificates, passwd
Recommends: pcscd, libnss3-tools
Section: utils
Priority: optional
Description: bridge between web pages and Taiwan's citizen certificate and NHI cards
 cardbridge is a local daemon that lets web pages use Taiwan's MOICA citizen
 certificate (自然人憑證) and NHI health insurance card (健保卡) through a PC/SC
 card reader. It serves its own HTTPS API and the HiPKI and NHI agents'
 protocols on 127.0.0.1 only, with an origin allow-list.
 .
 It bundles its own Node.js runtime, since Debian 12's nodejs is too old.
CONTROL

(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$STAGE/DEBIAN/md5sums"

mkdir -p "$OUT"
DEB="$OUT/cardbridge_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Z"$COMPRESS" --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
