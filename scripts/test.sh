#!/usr/bin/env bash
# The test suite: pure and contract tests in one pytest run, then each integration module in
# its own pytest process. SGLang keeps resolved server arguments process-wide and kills its
# parent process tree when a child fails, so modules with their own engines stay apart.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
status=0
run() {
  "$PY" -m pytest -q "$@"
  local rc=$?
  # 5: every test of the module is deselected (e.g. all `slow`): not a failure.
  if [[ $rc -ne 0 && $rc -ne 5 ]]; then status=1; fi
}
run tests/unit tests/contract "$@"
for module in tests/integration/test_*.py; do
  run "$module" "$@"
done
exit $status
