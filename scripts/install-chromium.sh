#!/usr/bin/env bash
# Install Debian's chromium (headless browser used by the docs and report tests).
# A no-op when chromium is already on PATH; needs root (apt-get), as CI has.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
