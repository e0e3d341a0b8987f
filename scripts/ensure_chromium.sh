#!/usr/bin/env bash
# The report test renders the HTML report in Debian's headless Chromium. Install it when missing
# (root on Debian); elsewhere say how, without failing the set-up.
set -u
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the report test..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test of the report will be skipped"
else
  echo "note: chromium not found; install it (apt-get install chromium) to run the report's browser test"
fi
exit 0
