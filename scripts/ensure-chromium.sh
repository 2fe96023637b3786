#!/usr/bin/env bash
# The console's browser tests (tests/e2e/test_console_browser.py) drive Debian's Chromium through
# Playwright (never `playwright install`). Idempotent: nothing to do once /usr/bin/chromium exists.
set -euo pipefail
CHROMIUM="${EVENTSTREAMS_TEST_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
if [ ! -x "$CHROMIUM" ]; then
  echo "Chromium is not at $CHROMIUM after apt-get install chromium; the browser tests need it" >&2
  exit 1
fi
