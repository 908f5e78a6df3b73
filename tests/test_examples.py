"""The README's main job, examples/digits.py, run as a user runs it (a subprocess)."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from ptdry.cli.main import main as cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.server
def test_digits_example_reaches_095_and_says_where_the_run_is(embedded_server, session_home, capsys):
    # The example uses the embedded default of $PTDRY_HOME: the session's running server.
    env = {**os.environ, "PTDRY_HOME": str(session_home)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "digits.py")], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    accuracy = float(re.search(r"^test accuracy: ([0-9.]+)$", done.stdout, re.M).group(1))
    assert accuracy >= 0.95
    run_id = re.search(r"^run ([0-9a-f-]{36}) stored in ", done.stdout, re.M).group(1)
    assert "see it with: ptdry runs" in done.stdout

    assert cli(["runs", "--where", f"id = '{run_id}'"]) == 0  # the command the example prints
    out = capsys.readouterr().out
    assert "digits-mlp" in out and "completed" in out


@pytest.mark.slow
@pytest.mark.server
def test_the_torch_and_keras_digits_runs_reach_095_and_are_compared(embedded_server, session_home, capsys):
    # examples/compare_frameworks.py runs examples/digits.py's and examples/digits_tf.py's
    # sessions as stored runs, then ptdry.compare on their test split.
    env = {**os.environ, "PTDRY_HOME": str(session_home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "compare_frameworks.py")], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = dict(re.findall(r"^(digits-mlp(?:-keras)?): test accuracy ([0-9.]+)", done.stdout, re.M))
    assert float(found["digits-mlp"]) >= 0.95 and float(found["digits-mlp-keras"]) >= 0.95
    table = re.findall(r"^(digits-mlp(?:-keras)? \w{8}) +([0-9a-f-]{36}) +(torch|tensorflow) +([0-9.]+)", done.stdout, re.M)
    assert [row[2] for row in table] == ["torch", "tensorflow"]
    assert [row[3] for row in table] == [f"{float(found[name]):.4f}" for name in ("digits-mlp", "digits-mlp-keras")]
    comparison = re.search(r"^comparison ([0-9a-f-]{36}) stored", done.stdout, re.M).group(1)

    assert cli(["comparisons", comparison[:8]]) == 0  # the command the example prints
    out = capsys.readouterr().out
    assert "digits: torch vs keras" in out and "tensorflow" in out


def test_folder_of_images_example_reads_what_it_wrote_and_loads_the_run_back(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "folder_of_images.py"), "--folder", str(tmp_path / "digits"),
         "--epochs", "3", "--db", "mongomock://images"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"^wrote 1797 images to ", done.stdout, re.M)
    assert len(list((tmp_path / "digits").glob("*/*.png"))) == 1797
    assert float(re.search(r"^test accuracy: ([0-9.]+)$", done.stdout, re.M).group(1)) >= 0.8
    assert f"loaded back: 1258 training images from {tmp_path / 'digits'}" in done.stdout
