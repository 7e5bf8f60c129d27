#!/usr/bin/env bash
# Install Debian's chromium for the HTML report's headless-browser test. Idempotent:
# does nothing when a chromium binary is already on PATH. Needs root (or sudo) and the Debian mirrors.
set -euo pipefail
for bin in chromium chromium-browser; do
    if command -v "$bin" >/dev/null 2>&1; then
        echo "chromium already installed: $(command -v "$bin")"
        exit 0
    fi
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo -n"  # never prompt: CI has passwordless sudo or none
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium
