#!/usr/bin/env bash
# Installs the Debian packages named as arguments (none: nothing to do). As root it runs apt-get;
# otherwise it prints the command to run and fails.
set -euo pipefail
[ $# -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "installing: $*"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
else
  echo "LatentDB needs: $*"
  echo "run: sudo apt-get install -y $*"
  exit 1
fi
