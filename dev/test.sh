#!/usr/bin/env bash
# Installs everything (dev/install.sh) and runs the whole test suite: unit tests (no network)
# and integration tests against a real Apache Kafka broker that the test session downloads
# once into ~/.cache/callslo and starts on a free loopback port.
# Extra arguments go to pytest, e.g. `dev/test.sh tests/unit -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
dev/install.sh
exec .venv/bin/python -m pytest "$@"
