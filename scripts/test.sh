#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it.
# System packages: Chromium (browser tests), espeak-ng + sox (synthetic speech), ffmpeg (WebM/M4A/MP3).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver espeak-ng sox ffmpeg > /dev/null
python -m pip install -q -r requirements-dev.txt
# olah (a local Hub mirror for pull tests) pins libraries that clash with ours: its own venv.
if [ ! -x .venv-olah/bin/olah-cli ]; then
  python -m venv .venv-olah && .venv-olah/bin/pip install -q "olah==0.5.4"
fi
python -m pytest "$@"
