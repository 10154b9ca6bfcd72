#!/usr/bin/env bash
# Install the system packages the test suite needs, only when they are missing:
# PostgreSQL (metadata tests), Redis (shared rate limits across server workers) and Chromium
# (the web console's end-to-end tests, driven by Playwright through its executable path).
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/$1" >/dev/null; }

have initdb && have pg_ctl && have postgres || need+=(postgresql)
have redis-server || need+=(redis-server)
have chromium || need+=(chromium)

if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing system packages: ${need[*]} (run as root or install them with apt-get)" >&2
        exit 1
    fi
    echo "installing system packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
