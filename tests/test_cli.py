"""The ``refopt`` command as a whole: dispatch, version, usage errors, closed pipes."""

from __future__ import annotations

import subprocess
import sys

import pytest

import refopt
from refopt.cli import main


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"refopt {refopt.__version__}"


def test_no_command_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "refopt", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"refopt {refopt.__version__}"


def test_closed_pipe_ends_quietly() -> None:
    # ``refopt quantize ... | head -c 1``: the reader leaves after one byte while refopt
    # still has far more than a pipe buffer (64 KiB) to write.
    values = [str(v) for v in range(1, 3001)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "refopt", "quantize", *values, "--format", "bf16"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err
