#!/usr/bin/env bash
# Installs what callslo needs on a fresh machine of this kind: Java and Maven for the local
# Kafka broker and Chromium for the report's browser test (from Debian, only when missing),
# and a virtualenv in .venv with callslo and its pinned dependencies (constraints.txt). Safe
# to run again: it only does what is missing, and reinstalls the Python packages when
# pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# The report's and the wallboard's tests render pages in headless Chromium.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if ((${#need_apt[@]})); then
    echo "dev/install.sh: installing ${need_apt[*]} (Kafka broker: java, maven; report test: chromium)"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${need_apt[@]}"
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.callslo-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    echo "dev/install.sh: installing callslo and its pinned dependencies into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
        -e ".[test,bench]" 2> >(grep -v -e "^ *$" -e "Editable installation" -e "^ *!!" \
        -e "\*\*\*\*" -e "Please be careful" -e "name as your package" -e "WheelFile" >&2)
    touch "$stamp"
fi
