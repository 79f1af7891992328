"""Smoke test: every example in ``examples/`` runs end to end at tiny size and learns something.

The examples are loaded and run in this process (``main(["--tiny"])``) rather than in subprocesses,
so JAX is imported once and the whole file takes a few seconds. ``tests/conftest.py`` gives this
process 8 CPU devices, so ``data_parallel.py`` really shards its batch.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import jax
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str):
    """Import ``examples/<name>.py`` under a private module name and call its ``main``."""
    spec = importlib.util.spec_from_file_location(
        f"_jaxloss_example_{name}", EXAMPLES / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        return module.main(["--tiny", *args])
    finally:
        sys.modules.pop(spec.name, None)


def test_every_example_is_smoke_tested_and_listed_in_the_readme():
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    tested = sorted(n.removeprefix("test_").split("_runs")[0] for n in globals() if "_runs" in n)
    assert scripts == sorted(tested), "add a smoke test for each example"
    readme = (EXAMPLES / "README.md").read_text()
    for script in scripts:
        assert f"({script}.py)" in readme, f"examples/README.md does not link {script}.py"


def test_quickstart_runs_prints_per_epoch_and_saves_its_curves(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    history = run_example("quickstart", "--out", str(tmp_path))
    assert len(history["loss"]) == len(history["val_accuracy"]) >= 2
    assert history["loss"][-1] < history["loss"][0]
    assert all(0.0 <= a <= 1.0 for a in history["accuracy"])
    png = tmp_path / "quickstart.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert captured.out.count("val_accuracy") + captured.err.count("val_accuracy") >= 2


def test_flax_nnx_runs_with_a_class_handle():
    pytest.importorskip("flax")
    results = run_example("flax_nnx")
    assert set(results) == {"huber_loss", "mean_squared_error"}
    assert all(math.isfinite(v) for v in results.values())


def test_equinox_train_runs_with_a_function_handle_and_filter_jit():
    pytest.importorskip("equinox")
    result = run_example("equinox_train")
    assert result["loss"] < result["first_loss"]
    assert 0.5 < result["accuracy"] <= 1.0


@pytest.mark.skipif(jax.device_count() < 2, reason="needs several devices")
def test_data_parallel_runs_and_its_sharded_loss_is_the_global_mean():
    result = run_example("data_parallel")
    assert result["with_axis"] == pytest.approx(result["reference"], rel=1e-5)
    assert result["grad_diff"] < 1e-5
    assert math.isfinite(result["final_loss"])


def test_mixed_precision_runs_with_a_float32_loss_on_bfloat16_logits():
    result = run_example("mixed_precision")
    assert result["loss_dtype"] == "float32"
    assert result["dlogits_dtype"] == "bfloat16"
    assert abs(result["mixed_accuracy"] - result["float32_accuracy"]) < 0.1


def test_multi_output_runs_a_weighted_sum_of_losses_plus_a_penalty():
    result = run_example("multi_output")
    assert math.isfinite(result["total"]) and result["total"] > 0


def test_speech_ctc_runs_decodes_and_saves_an_alignment_plot(tmp_path):
    pytest.importorskip("matplotlib")
    result = run_example("speech_ctc", "--out", str(tmp_path))
    assert result["loss"] < result["first_loss"]
    assert result["greedy_error"][-1] < result["greedy_error"][0]
    assert 0.0 <= result["beam_error"] < result["greedy_error"][0]
    assert all(math.isfinite(s) and s <= 0 for s in result["alignment_scores"].tolist())
    assert result["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(jax.device_count() < 8, reason="needs a 2 x 4 mesh")
def test_language_model_runs_with_a_vocab_parallel_head_and_learns(tmp_path):
    pytest.importorskip("equinox")
    pytest.importorskip("matplotlib")
    pytest.importorskip("tqdm")
    history = run_example("language_model", "--out", str(tmp_path))
    first, last = history["loss"][0], sum(history["loss"][-5:]) / 5
    assert math.isfinite(first) and last < 0.6 * first  # uniform over 64 tokens: log 64 = 4.16
    assert sum(history["accuracy"][-5:]) / 5 > 0.4  # the chain's best is about 0.7
    assert (tmp_path / "language_model.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_preference_runs_dpo_and_reward_accuracy_rises(tmp_path):
    pytest.importorskip("matplotlib")
    history = run_example("preference", "--out", str(tmp_path))
    assert history["loss"][-1] < history["loss"][0]
    assert history["reward_accuracy"][-1] > history["reward_accuracy"][0] + 0.5
    assert (tmp_path / "preference.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
