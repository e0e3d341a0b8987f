#!/usr/bin/env bash
# The report test renders the HTML report in Debian's headless Chromium.
exec "$(dirname "$0")/ensure_apt_package.sh" chromium chromium "the browser test of the report"
