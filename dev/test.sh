#!/usr/bin/env bash
# Installs everything callslo needs on a fresh machine and runs the whole test suite:
# unit tests (no network) and integration tests against a real Apache Kafka broker that the
# test session downloads (once, into ~/.cache/callslo) and starts on a free loopback port.
# Extra arguments go to pytest, e.g. `dev/test.sh tests/unit -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if ((${#need_apt[@]})); then
    echo "dev/test.sh: installing ${need_apt[*]} (needed to run the local Kafka broker)"
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need_apt[@]}";
    else sudo apt-get update -qq && sudo apt-get install -y -qq "${need_apt[@]}"; fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,bench]"

exec .venv/bin/python -m pytest "$@"
