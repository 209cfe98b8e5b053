#!/bin/sh
# Makes sure the servers the local stack runs are installed: mariadbd (+ mariadb-install-db) and haproxy,
# the browser the console's browser test drives (Debian's chromium: no browser download at test time),
# and Node.js, whose built-in test runner checks the console page's modules (Debian's nodejs: no npm).
# Installs the missing Debian/Ubuntu packages with apt-get when that is permitted: running as root or
# with password-less sudo, and LOCAL_STACK_NO_INSTALL is not set. Otherwise prints the fix and fails.
# mariadb-server-core carries only the binaries: no system service is started on port 3306.
set -eu

missing=""
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/local/sbin/$1" ]; }
have mariadbd && have mariadb-install-db || missing="$missing mariadb-server-core"
have haproxy || missing="$missing haproxy"
have chromium || missing="$missing chromium"
have node || missing="$missing nodejs"

[ -z "$missing" ] && exit 0

fix="apt-get install -y --no-install-recommends$missing"
if [ -n "${LOCAL_STACK_NO_INSTALL:-}" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "local stack: missing packages:$missing. Install them: $fix" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    echo "local stack: missing packages:$missing. Install them as root: sudo $fix" >&2
    exit 1
fi

echo "local stack: installing$missing with apt-get" >&2
# A fresh machine may have no package lists yet; refresh them only when the first attempt fails.
# shellcheck disable=SC2086
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
    || { $as_root apt-get update \
         && $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing; }
