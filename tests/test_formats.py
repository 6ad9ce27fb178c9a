"""refopt.formats: presets against the standards and NumPy/ml_dtypes, validation, bit patterns."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import refopt
from refopt import FloatFormat, format, list_formats
from refopt.formats import ROUNDING_MODES, check_rounding

# Hand-derived from each format's definition (bias, top binade): xmax, xmin, smallest subnormal.
PRESET_RANGES = {
    "fp64": (1.7976931348623157e308, 2.0**-1022, 2.0**-1074),
    "fp32": ((2 - 2.0**-23) * 2.0**127, 2.0**-126, 2.0**-149),
    "tf32": ((2 - 2.0**-10) * 2.0**127, 2.0**-126, 2.0**-136),
    "bf16": ((2 - 2.0**-7) * 2.0**127, 2.0**-126, 2.0**-133),
    "fp16": (65504.0, 2.0**-14, 2.0**-24),
    "fp8_e4m3": (240.0, 2.0**-6, 2.0**-9),
    "fp8_e4m3fn": (448.0, 2.0**-6, 2.0**-9),
    "fp8_e4m3fnuz": (240.0, 2.0**-7, 2.0**-10),
    "fp8_e5m2": (57344.0, 2.0**-14, 2.0**-16),
    "fp8_e5m2fnuz": (57344.0, 2.0**-15, 2.0**-17),
    "fp8_e3m4": (15.5, 0.25, 2.0**-6),
    "fp6_e2m3fn": (7.5, 1.0, 0.125),
    "fp6_e3m2fn": (28.0, 0.25, 0.0625),
    "fp4_e2m1fn": (6.0, 1.0, 0.5),
}


def test_presets_are_the_documented_set() -> None:
    assert list(list_formats()) == list(PRESET_RANGES)


@pytest.mark.parametrize("name", sorted(PRESET_RANGES))
def test_preset_ranges(name: str) -> None:
    fmt = format(name)
    assert (fmt.xmax, fmt.xmin, fmt.xmin_subnormal) == PRESET_RANGES[name]
    assert fmt.name == name and fmt is refopt.format(name)
    assert fmt.eps == 2.0**-fmt.mantissa_bits and fmt.precision == fmt.mantissa_bits + 1
    assert fmt.xmin == 2.0**fmt.emin


@pytest.mark.parametrize(("name", "dtype"), [("fp64", np.float64), ("fp32", np.float32), ("fp16", np.float16)])
def test_ieee_presets_match_numpy_finfo(name: str, dtype: type) -> None:
    fmt, info = format(name), np.finfo(dtype)
    assert fmt.mantissa_bits == info.nmant and fmt.exponent_bits == info.nexp
    assert fmt.xmax == float(info.max) and fmt.xmin == float(info.smallest_normal)
    assert fmt.xmin_subnormal == float(info.smallest_subnormal) and fmt.eps == float(info.eps)
    assert fmt.emin == info.minexp and fmt.emax == info.maxexp - 1


@pytest.mark.parametrize(
    ("name", "kind"),
    [("bf16", "bfloat16"), ("fp8_e4m3", "float8_e4m3"), ("fp8_e4m3fn", "float8_e4m3fn"),
     ("fp8_e4m3fnuz", "float8_e4m3fnuz"), ("fp8_e5m2", "float8_e5m2"),
     ("fp8_e5m2fnuz", "float8_e5m2fnuz"), ("fp8_e3m4", "float8_e3m4"),
     ("fp6_e2m3fn", "float6_e2m3fn"), ("fp6_e3m2fn", "float6_e3m2fn"),
     ("fp4_e2m1fn", "float4_e2m1fn")],
)
def test_presets_match_mldtypes(name: str, kind: str) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    dt = np.dtype(getattr(ml_dtypes, kind))
    info = ml_dtypes.finfo(dt)
    fmt = format(name)
    assert fmt.xmax == float(info.max) and fmt.xmin == float(info.smallest_normal)
    assert fmt.xmin_subnormal == float(info.smallest_subnormal) and fmt.eps == float(info.eps)
    if dt.itemsize * 8 == fmt.bits:  # 8/16-bit: the value of every code agrees
        codes = np.arange(2**fmt.bits, dtype=np.uint8 if fmt.bits == 8 else np.uint16)
        with np.errstate(invalid="ignore"):  # NaN codes
            theirs = codes.view(dt).astype(np.float64)
        ours = fmt.all_values()
        np.testing.assert_array_equal(ours, theirs)
        finite = np.isfinite(ours)
        np.testing.assert_array_equal(np.signbit(ours[finite]), np.signbit(theirs[finite]))


@pytest.mark.parametrize("name", sorted(PRESET_RANGES))
def test_encode_decode_round_trip(name: str) -> None:
    fmt = format(name)
    if fmt.bits <= 16:
        values = fmt.all_values()
        codes = range(values.size) if fmt.bits <= 8 else np.random.default_rng(0).integers(0, values.size, 4000)
        for code in codes:
            v = float(values[code])
            if math.isfinite(v) or math.isinf(v):
                assert fmt.encode(v) == code or (v == 0 and fmt.top_binade == "fnuz")
    for v in (fmt.xmax, -fmt.xmax, fmt.xmin, fmt.xmin_subnormal, 1.0, -0.0):
        assert fmt.decode(fmt.encode(v)) == v
    if fmt.has_nan:
        assert math.isnan(fmt.decode(fmt.encode(math.nan)))


def test_encode_known_bit_patterns() -> None:
    assert format("fp16").encode(1.0) == 0x3C00 and format("fp16").encode(-2.0) == 0xC000
    assert format("fp16").encode(65504.0) == 0x7BFF and format("fp16").encode(math.inf) == 0x7C00
    assert format("bf16").encode(1.0) == 0x3F80
    assert format("fp8_e4m3fn").encode(448.0) == 0x7E and format("fp8_e4m3fn").encode(math.nan) == 0x7F
    assert format("fp8_e4m3fnuz").encode(math.nan) == 0x80 and format("fp8_e4m3fnuz").encode(-0.0) == 0
    assert format("fp4_e2m1fn").encode(-6.0) == 0b1111
    assert format("fp32").encode(float(np.float32(0.1))) == 0x3DCCCCCD
    assert format("fp64").encode(0.1) == 0x3FB999999999999A


@pytest.mark.parametrize(
    ("name", "value"),
    [("fp16", 0.1), ("fp16", 65536.0), ("fp8_e4m3fn", 480.0), ("fp8_e4m3fn", math.inf),
     ("fp6_e2m3fn", math.nan), ("fp8_e4m3", 2.0**-10)],
)
def test_encode_rejects_values_not_in_the_format(name: str, value: float) -> None:
    with pytest.raises(ValueError, match="not representable"):
        format(name).encode(value)


def test_decode_rejects_bad_codes() -> None:
    with pytest.raises(ValueError, match="code must be in 0..255"):
        format("fp8_e4m3fn").decode(256)
    with pytest.raises(TypeError, match="code must be an int"):
        format("fp8_e4m3fn").decode(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="subnormal"):
        FloatFormat(4, 3, subnormals=False).decode(1)


def test_all_values_marks_unused_subnormal_patterns_and_limits_width() -> None:
    values = FloatFormat(4, 3, subnormals=False).all_values()
    assert np.isnan(values[1:8]).all() and values[0] == 0.0 and values[8] == 2.0**-6
    with pytest.raises(ValueError, match="at most 16 bits"):
        format("fp32").all_values()


def test_unit_roundoff() -> None:
    bf16 = format("bf16")
    assert bf16.unit_roundoff() == 2.0**-8 == bf16.unit_roundoff("nearest_away")
    for mode in ("toward_zero", "up", "down", "odd", "stochastic"):
        assert bf16.unit_roundoff(mode) == 2.0**-7
    with pytest.raises(ValueError, match="nearest_even, nearest_away, toward_zero, up, down, odd, stochastic"):
        bf16.unit_roundoff("nearest")
    with pytest.raises(TypeError, match="rounding"):
        bf16.unit_roundoff(None)  # type: ignore[arg-type]
    assert check_rounding("odd") == "odd" and refopt.ROUNDING_MODES == ROUNDING_MODES


@pytest.mark.parametrize("M", [0, 3, 23, 52])
def test_mantissa_only_is_float64s_exponent_range(M: int) -> None:
    fmt = FloatFormat.mantissa_only(M)
    f64 = format("fp64")
    assert (fmt.emin, fmt.emax, fmt.bias, fmt.exponent_bits) == (f64.emin, f64.emax, 1023, 11)
    assert fmt.mantissa_bits == M and fmt.top_binade == "ieee" and fmt.subnormals
    assert fmt.xmax == (2 - 2.0**-M) * 2.0**1023 and fmt.xmin_subnormal == 2.0 ** (-1022 - M)
    assert fmt == FloatFormat(11, M)  # the name does not take part in equality
    assert str(M) in str(fmt)


@pytest.mark.parametrize("M", [-1, 53, 2.0, True])
def test_mantissa_only_rejects_bad_m(M: object) -> None:
    with pytest.raises((ValueError, TypeError), match="M must be"):
        FloatFormat.mantissa_only(M)  # type: ignore[arg-type]


def test_value_object_semantics() -> None:
    a = FloatFormat(4, 3, top_binade="fn", name="mine")
    b = format("fp8_e4m3fn")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != FloatFormat(4, 3, top_binade="fn", overflow="saturate")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.mantissa_bits = 4  # type: ignore[misc]
    assert eval(repr(b), {"FloatFormat": FloatFormat}) == b
    assert str(b).startswith("fp8_e4m3fn") and "fn" in str(b) and "nan" in str(b)


def test_defaults_are_resolved() -> None:
    f = FloatFormat(5, 2)
    assert (f.bias, f.overflow, f.top_binade, f.has_inf) == (15, "inf", "ieee", True)
    assert FloatFormat(4, 3, top_binade="fn").overflow == "nan"
    assert FloatFormat(2, 1, top_binade="fn", has_nan=False).overflow == "saturate"
    assert FloatFormat(4, 3, bias=8, top_binade="fnuz").overflow == "nan"
    assert not FloatFormat(4, 3, bias=8, top_binade="fnuz").has_negative_zero
    nosub = FloatFormat(5, 2, subnormals=False)
    assert nosub.xmin_subnormal == nosub.xmin == 2.0**-14


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"exponent_bits": 12, "mantissa_bits": 3}, ValueError, "exponent_bits must be in 1..11"),
        ({"exponent_bits": 4.0, "mantissa_bits": 3}, TypeError, "exponent_bits must be an int"),
        ({"exponent_bits": 4, "mantissa_bits": 53}, ValueError, "mantissa_bits must be in 0..52"),
        ({"exponent_bits": 4, "mantissa_bits": True}, TypeError, "mantissa_bits must be an int"),
        ({"exponent_bits": 4, "mantissa_bits": 3, "bias": 7.0}, TypeError, "bias must be an int"),
        ({"exponent_bits": 4, "mantissa_bits": 3, "top_binade": "ocp"}, ValueError, "top_binade must be one of ieee, fn, fnuz"),
        ({"exponent_bits": 4, "mantissa_bits": 3, "overflow": "wrap"}, ValueError, "overflow must be one of inf, saturate, nan"),
        ({"exponent_bits": 4, "mantissa_bits": 3, "top_binade": "fn", "overflow": "inf"}, ValueError, "overflow must be one of nan, saturate"),
        ({"exponent_bits": 2, "mantissa_bits": 1, "top_binade": "fn", "has_nan": False, "overflow": "nan"}, ValueError, "overflow must be one of saturate"),
        ({"exponent_bits": 4, "mantissa_bits": 3, "bias": 8, "top_binade": "fnuz", "overflow": "inf"}, ValueError, "overflow must be one of nan, saturate"),
        ({"exponent_bits": 4, "mantissa_bits": 3, "has_nan": False}, ValueError, "has_nan=False is only allowed"),
        ({"exponent_bits": 1, "mantissa_bits": 3}, ValueError, "exponent_bits >= 2"),
        ({"exponent_bits": 1, "mantissa_bits": 0, "top_binade": "fn"}, ValueError, "no finite normal value"),
        ({"exponent_bits": 4, "mantissa_bits": 3, "subnormals": 1}, TypeError, "subnormals must be a bool"),
        ({"exponent_bits": 11, "mantissa_bits": 3, "bias": 1000}, ValueError, "float64"),
        ({"exponent_bits": 11, "mantissa_bits": 52, "bias": 1030}, ValueError, "float64"),
        ({"exponent_bits": 4, "mantissa_bits": 3, "name": 5}, TypeError, "name must be a str"),
    ],
)
def test_invalid_formats(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        FloatFormat(**kwargs)


def test_small_valid_corner_formats() -> None:
    f = FloatFormat(1, 2, top_binade="fn")  # only subnormals and one finite binade
    assert f.xmax == 3.0 and f.emin == f.emax == 1  # 2 * 1.11b is NaN: max is 2 * 1.10b
    g = FloatFormat(2, 0, top_binade="fn")
    assert g.xmax == 2.0 and math.isnan(g.decode(0b0_11))


def test_format_lookup_errors() -> None:
    with pytest.raises(ValueError) as info:
        format("e4m3")
    assert all(name in str(info.value) for name in list_formats())
    with pytest.raises(TypeError, match="preset name or a FloatFormat"):
        format(8)  # type: ignore[arg-type]
    custom = FloatFormat(3, 1)
    assert format(custom) is custom


def test_list_formats_returns_a_copy() -> None:
    presets = list_formats()
    presets.pop("fp64")
    assert "fp64" in list_formats()


def test_fits_float32() -> None:
    fits = {name for name, f in list_formats().items() if f.fits_float32}
    assert fits == set(PRESET_RANGES) - {"fp64"}
    assert not FloatFormat.mantissa_only(3).fits_float32
    assert not FloatFormat(8, 24).fits_float32 and FloatFormat(8, 23).fits_float32
    assert not FloatFormat(8, 10, bias=120).fits_float32  # emax 134 > 127
