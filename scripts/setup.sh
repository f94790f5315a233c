#!/usr/bin/env bash
# Create the virtual environment and install the package with its book and test extras.
# torch is pinned and installed first so that nothing pulls a multi-GB CUDA build.
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${2:-python3}
cd "$(dirname "$0")/.."
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/pip" install -q "torch==2.13.0"
"$VENV/bin/pip" install -q -e ".[book,test]"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "environment ready: $VENV"
