#!/usr/bin/env bash
# Creates a throwaway Python venv with PyTorch (CPU) and numpy for the peer
# benchmark in this folder. Run by hand; CI never runs Python.
#
#   benches/peer/setup.sh [VENV_DIR]      (default /tmp/venv-peer)
#
# PyTorch's CPU wheel index is tried first (small wheels, no CUDA packages);
# if that host cannot be reached, the plain `torch` wheel from PyPI is used
# (it pulls the CUDA runtime packages on Linux: several GB of disk).
set -euo pipefail
VENV="${1:-/tmp/venv-peer}"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
if "$VENV/bin/python" -m pip install --quiet --timeout 60 \
    torch --index-url https://download.pytorch.org/whl/cpu; then
    echo "setup: torch from the CPU wheel index" >&2
else
    echo "setup: CPU wheel index unreachable; installing torch from PyPI" >&2
    "$VENV/bin/python" -m pip install --quiet torch
fi
"$VENV/bin/python" -m pip install --quiet numpy
"$VENV/bin/python" -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)'
