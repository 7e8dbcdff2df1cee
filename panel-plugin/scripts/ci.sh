#!/usr/bin/env bash
# Build and test the Grafana panel plugin on a fresh or a warm machine (scripts/test calls
# this): typecheck, lint, build, jest. Installs what it needs when missing: Node.js and npm (Debian's packages) and
# Chromium (the harness screenshot test); runs `npm ci` only when package-lock.json changed
# since the last successful install; then `npm run build` and `npm test`. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo

apt_install() {
  # dpkg may be locked by another install: retry for a few minutes
  local tries=0
  until DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 18 ]; then
      echo "panel-plugin: could not install $* (apt locked or unavailable)" >&2
      return 1
    fi
    [ "$tries" -eq 1 ] && $SUDO apt-get update -qq || true
    sleep 10
  done
}

missing=()
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "panel-plugin: installing ${missing[*]} (Debian packages)"
  $SUDO apt-get update -qq
  apt_install "${missing[@]}"
fi

stamp=node_modules/.growthwatch-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "panel-plugin: node_modules matches package-lock.json, skipping npm ci"
else
  echo "panel-plugin: npm ci (node $(node --version), npm $(npm --version))"
  npm ci --no-audit --no-fund --prefer-offline --loglevel=error
  echo "$want" > "$stamp"
fi

echo "panel-plugin: typecheck and lint (tsc, eslint)"
npm run typecheck --silent
npx eslint --cache --quiet .

echo "panel-plugin: npm run build"
npm run build --silent > /tmp/growthwatch-panel-build.log 2>&1 || { cat /tmp/growthwatch-panel-build.log; exit 1; }
grep -q "compiled successfully" /tmp/growthwatch-panel-build.log
# what Grafana loads: module.js and plugin.json with our id, and no test fixtures
[ -s dist/module.js ] && grep -q '"id": "growthwatch-growth-panel"' dist/plugin.json
[ ! -e dist/__fixtures__ ]
echo "panel-plugin: build ok -> panel-plugin/dist"

echo "panel-plugin: npm test (jest: parsers, geometry, headless Chromium screenshots)"
npm test --silent
echo "panel-plugin: all checks passed"
