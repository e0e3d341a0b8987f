#!/usr/bin/env bash
# ensure_apt_package.sh COMMAND PACKAGE PURPOSE: install Debian's PACKAGE when COMMAND is missing
# (root on Debian), for the tests named in PURPOSE; elsewhere say how, without failing the set-up
# (those tests then skip, or fail under CI=true).
set -u
command_name=$1 package=$2 purpose=$3
if command -v "$command_name" >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's $package for $purpose..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null) \
    || echo "warning: could not install $package; $purpose will be skipped"
else
  echo "note: $command_name not found; install it (apt-get install $package) to run $purpose"
fi
exit 0
