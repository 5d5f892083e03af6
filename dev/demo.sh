#!/usr/bin/env bash
# The one-command demo on a fresh machine: installs what is missing (dev/install.sh), then runs
# `callslo demo`: a local Kafka broker, the topics, the worker and a simulated contact center
# (three tenants, five queues, 15 times faster than real time), the wallboard's URL and a
# live summary. Ctrl-C stops everything it started and removes its data. Options of
# `callslo demo` pass through (e.g. dev/demo.sh --web-port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
dev/install.sh
exec .venv/bin/callslo demo "$@"
