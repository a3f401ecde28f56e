#!/usr/bin/env bash
# Debian's chromium for the browser test: prints its path, installing the package first when it is missing
# (as root, with apt-get; nothing else is downloaded). Exits 1 with the reason when it cannot.
set -euo pipefail

die() { echo "chromium: $*" >&2; exit 1; }

find_chromium() { command -v chromium || command -v chromium-browser || true; }

if [[ -z $(find_chromium) ]]; then
  [[ $(id -u) -eq 0 ]] || die "Debian's chromium is not installed; run as root (it installs the 'chromium' package) or install it yourself"
  command -v apt-get >/dev/null 2>&1 || die "chromium is not installed and there is no apt-get to install it"
  echo "chromium: installing Debian's chromium (apt-get install chromium)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || die "apt-get update failed"
  apt-get install -y -qq chromium >&2 || die "apt-get install chromium failed"
  [[ -n $(find_chromium) ]] || die "apt-get installed chromium but no chromium is on the PATH"
fi
find_chromium
