"""``refopt formats`` and ``refopt quantize`` (values checked against hand-derived facts)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from refopt.cli import main
from refopt import list_formats


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_formats_table(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "formats")
    assert status == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert set(list_formats()) <= set(rows)
    # name E M bias emin emax xmin xmin_sub xmax eps top overflow
    assert rows["fp16"][1:10] == ["5", "10", "15", "-14", "15", "2^-14", "2^-24", "65504", "2^-10"]
    assert rows["fp8_e4m3fn"][8] == "448" and rows["fp8_e4m3fn"][-1] == "nan"
    assert rows["fp8_e4m3fnuz"][3] == "8" and rows["fp8_e4m3fnuz"][8] == "240"
    assert rows["fp4_e2m1fn"][8] == "6" and rows["fp4_e2m1fn"][-1] == "saturate"
    assert "mantissa_only(M)" in out


def test_quantize_shows_value_bits_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "quantize", "0.1", "-464", "465", "--format", "fp8_e4m3fn")
    assert status == 0
    blocks = out.split("\n\n")
    assert "unit roundoff u = 2^-4 = 0.0625" in blocks[0]
    tenth, minus464, over = blocks[1], blocks[2], blocks[3]
    # 0.1 = 1.6 * 2^-4 -> 1.625 * 2^-4 = 0.1015625: exponent field -4 + 7 = 3, mantissa .101
    assert "quantized        0.1015625" in tenth
    assert "0.1000000000000000055511151231257827021181" in tenth  # the float64 input
    assert "0 | 0011 | 101" in tenth and "0x1D" in tenth
    assert "rel error        0.015625  = 0.25 u" in tenth
    assert "quantized        -448.0" in minus464 and "1 | 1111 | 110" in minus464 and "0xFE" in minus464
    assert "quantized        nan" in over and "policy 'nan'" in over and "0x7F" in over


def test_quantize_negative_values_are_values_not_options(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _run(capsys, "quantize", "-1e-9", "-0x1.8p-3", "-inf", "-f", "fp8_e4m3fn")
    assert status == 0, err
    tiny, hexval, inf = out.split("\n\n")[1:]
    assert "quantized        -0.0" in tiny  # below half the smallest subnormal 2^-10
    # -1.5 * 2^-3: sign 1, exponent field -3 + 7 = 4, mantissa .100
    assert "quantized        -0.1875" in hexval and "1 | 0100 | 100" in hexval and "0xA4" in hexval
    assert "quantized        nan" in inf and "no infinity" in inf


def test_quantize_mantissa_only_and_directed(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "quantize", "0.1", "-f", "mantissa_only(3)", "-r", "up")
    assert status == 0
    assert "quantized        0.1015625" in out and "u = 2^-3" in out and "01111111011" in out


def test_quantize_stochastic_is_seeded(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("quantize", "0.3", "0.3", "0.3", "0.3", "-f", "bf16", "-r", "stochastic", "--seed", "5")
    assert _run(capsys, *argv)[1] == _run(capsys, *argv)[1]
    out = _run(capsys, *argv)[1]
    assert {"0.30078125", "0.298828125"} >= {
        line.split()[1] for line in out.splitlines() if line.strip().startswith("quantized")
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("quantize", "1", "-f", "bf16", "-r", "stochastic"), "--seed"),
        (("quantize", "abc", "-f", "bf16"), "VALUE 'abc' is not a number"),
        (("quantize", "1", "-f", "fp9"), "fp8_e4m3fn"),
    ],
)
def test_quantize_errors(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str) -> None:
    status, _, err = _run(capsys, *argv)
    assert status == 2 and message in err and err.startswith("refopt quantize: error:")


def test_python_dash_m_refopt_formats() -> None:
    done = subprocess.run([sys.executable, "-m", "refopt", "formats"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "fp4_e2m1fn" in done.stdout and "57344" in done.stdout
