#!/usr/bin/env bash
# Install Debian's chromium (headless browser of the report and docs tests) unless present.
# Called by .ci/run; needs root (or password-less sudo) and the Debian package archive.
set -euo pipefail
for exe in chromium chromium-browser; do
  if command -v "$exe" >/dev/null 2>&1; then
    exit 0
  fi
done
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "install-chromium.sh: chromium is missing and this user cannot install packages;" \
       "run 'apt-get install chromium' as root (the report browser test needs it)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium.sh: no apt-get here; install chromium with the system's package" \
       "manager (the report browser test needs it)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
  chromium fonts-liberation fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
