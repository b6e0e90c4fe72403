#!/usr/bin/env bash
# Create the peer-code benchmark environment `.venv-bench` (git-ignored).
#
# It holds boost_corr (run on CPU through torch) and scikit-beam, which the
# benchmark script `benchmarks/kernel.py` calls through
# `.venv-bench/bin/python benchmarks/peers.py ...` subprocesses. Our own kernel
# runs in the project's `.venv`; the two environments never mix.
#
# Notes
# - boost_corr's metadata asks for Python >= 3.12 but it runs on 3.11, hence
#   `--ignore-requires-python --no-deps`; its runtime imports (torch, numpy,
#   h5py, hdf5plugin, scipy, tqdm, psutil, filelock) are installed by hand.
#   Its GUI / GPU-scheduler extras (PyQt5, pyqtgraph, pynvml) are not needed.
# - torch is pinned to the CPU wheel 2.13.0: never install a plain `torch`
#   (that would pull a multi-GB CUDA build).
# - scikit-beam 0.0.27 is an sdist with a C and Cython extensions: it builds
#   with Cython and the system C compiler (`--no-build-isolation`). Its heavy
#   optional deps (fabio, pyFAI, lmfit) are not needed by
#   `skbeam.core.correlation`, so it is installed with `--no-deps` and only
#   six + scikit-image are added.
#
# Usage: bash benchmarks/setup_peers.sh   (from anywhere; idempotent)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${root}/.venv-bench"
python="${PYTHON:-python3}"

if [[ ! -x "${venv}/bin/python" ]]; then
    "${python}" -m venv "${venv}"
fi
pip=("${venv}/bin/pip" install --quiet)

# 1. torch, CPU build only.
"${pip[@]}" "torch==2.13.0"

# 2. Scientific stack, matched to the versions of the project's .venv where possible.
"${pip[@]}" "numpy>=2,<2.5" "scipy>=1.11,<2" "h5py>=3.10,<4" "hdf5plugin>=4.4,<8" \
    tqdm psutil filelock six "scikit-image>=0.22" "Cython>=3" setuptools wheel

# 3. boost_corr (pure Python) without its dependency list.
"${pip[@]}" --no-deps --ignore-requires-python boost-corr

# 4. scikit-beam (compiles its extensions against the numpy above).
"${pip[@]}" --no-deps --no-build-isolation scikit-beam

# 5. Smoke test: both peers import and their entry points exist.
"${venv}/bin/python" - <<'EOF'
import importlib.metadata as md

import torch
from boost_corr.xpcs_aps_8idi.gpu_corr_multitau import solve_multitau  # noqa: F401
from boost_corr.xpcs_aps_8idi.gpu_corr_twotime import solve_twotime  # noqa: F401
from skbeam.core.correlation import multi_tau_auto_corr  # noqa: F401

print(
    "peer env ok:",
    f"torch {torch.__version__},",
    f"boost_corr {md.version('boost-corr')},",
    f"scikit-beam {md.version('scikit-beam')},",
    f"numpy {md.version('numpy')}",
)
EOF
