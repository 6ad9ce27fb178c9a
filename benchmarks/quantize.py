"""Speed and memory of :func:`refopt.quantize`, as ratios to ``x.copy()`` in the same run.

For every preset format (and a few ``mantissa_only`` formats) and every rounding mode,
time ``quantize(x, fmt, mode)`` on ``n`` float64 values of widely mixed magnitude
(standard normal times ``10**uniform(-10, 10)``; ``--decades``) and divide by the time of
``x.copy()``; best of ``--repeats`` runs each. Where ml_dtypes (or NumPy) has the
format, the cast round trip ``x.astype(dtype).astype(np.float64)`` is timed the same
way for comparison (it rounds through float32, twice, so it is not correctly rounded).
The peak memory allocated during one call beyond the output array is measured with
:mod:`tracemalloc`.

Run ``python benchmarks/quantize.py`` (about a minute; ``--n 100000`` for a quick look).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

import refopt

MODES = refopt.ROUNDING_MODES

# format name -> attribute of ml_dtypes (or "numpy:<dtype>") with the same values
CAST_DTYPES = {
    "fp32": "numpy:float32",
    "bf16": "bfloat16",
    "fp16": "numpy:float16",
    "fp8_e4m3": "float8_e4m3",
    "fp8_e4m3fn": "float8_e4m3fn",
    "fp8_e4m3fnuz": "float8_e4m3fnuz",
    "fp8_e5m2": "float8_e5m2",
    "fp8_e5m2fnuz": "float8_e5m2fnuz",
    "fp8_e3m4": "float8_e3m4",
    "fp6_e2m3fn": "float6_e2m3fn",
    "fp6_e3m2fn": "float6_e3m2fn",
    "fp4_e2m1fn": "float4_e2m1fn",
}


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls of ``fn``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def ratio_to_copy(fn: Callable[[], object], x: np.ndarray, repeats: int) -> float:
    """Best time of ``fn`` over best time of ``x.copy()``, the two runs interleaved.

    Interleaving keeps the baseline in the same conditions as the candidate when the
    machine is shared and its load changes during the run.
    """
    t_fn = t_copy = float("inf")
    for _ in range(repeats):
        t_copy = min(t_copy, best_time(x.copy, 1))
        t_fn = min(t_fn, best_time(fn, 1))
    return t_fn / t_copy


def cast_dtype(name: str) -> np.dtype | None:
    """The NumPy/ml_dtypes dtype for a preset, or None if unavailable."""
    spec = CAST_DTYPES.get(name)
    if spec is None:
        return None
    if spec.startswith("numpy:"):
        return np.dtype(spec[len("numpy:"):])
    try:
        import ml_dtypes
    except ImportError:
        return None
    dtype = getattr(ml_dtypes, spec, None)
    return None if dtype is None else np.dtype(dtype)


def peak_extra_bytes(fn: Callable[[], np.ndarray]) -> int:
    """Peak bytes allocated while calling ``fn``, minus the size of its result."""
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - out.nbytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10**7, help="number of values (default 1e7)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats (best of)")
    parser.add_argument("--formats", nargs="*", help="format names (default: all presets)")
    parser.add_argument("--modes", nargs="*", choices=MODES, help="modes (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--decades", type=float, default=10.0,
                        help="magnitudes 10**uniform(-D, D) (default 10; 0: standard normal)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal(args.n) * 10.0 ** rng.uniform(-args.decades, args.decades, args.n)
    formats: dict[str, refopt.FloatFormat] = dict(refopt.list_formats())
    for m in (3, 10, 23):
        fmt = refopt.FloatFormat.mantissa_only(m)
        formats[fmt.name or str(m)] = fmt
    if args.formats:
        formats = {name: formats.get(name) or refopt.format(name) for name in args.formats}
    modes = args.modes or list(MODES)

    t_copy = best_time(x.copy, args.repeats)
    print(f"n = {args.n:,} float64, x.copy() = {t_copy * 1e3:.1f} ms "
          f"({t_copy / args.n * 1e9:.2f} ns/value); ratios = best time / best time of x.copy() "
          f"interleaved with it, {args.repeats} runs each")
    abbrev = {"nearest_even": "RNE", "nearest_away": "RNA", "toward_zero": "RZ", "up": "RU",
              "down": "RD", "odd": "odd", "stochastic": "SR"}
    header = f"{'format':18s}" + "".join(f"{abbrev[m]:>7s}" for m in modes)
    print(header + f"{'cast':>8s}{'peak extra':>12s}")
    worst = {m: 0.0 for m in modes}
    for name, fmt in formats.items():
        row = f"{name:18s}"
        for mode in modes:
            kw = {"rng": np.random.default_rng(1)} if mode == "stochastic" else {}
            ratio = ratio_to_copy(lambda: refopt.quantize(x, fmt, mode, **kw), x, args.repeats)
            worst[mode] = max(worst[mode], ratio)
            row += f"{ratio:7.2f}"
        dtype = cast_dtype(name)
        if dtype is None:
            row += f"{'-':>8s}"
        else:
            with np.errstate(over="ignore"):
                cast = ratio_to_copy(lambda: x.astype(dtype).astype(np.float64), x, args.repeats)
            row += f"{cast:8.2f}"
        extra = max(
            peak_extra_bytes(lambda: refopt.quantize(x, fmt, mode, rng=1))
            for mode in ("nearest_even", "stochastic")
        )
        row += f"{extra / 1024:9.0f} KiB"
        print(row, flush=True)
    print(f"{'worst':18s}" + "".join(f"{worst[m]:7.2f}" for m in modes))
    print("cast: x.astype(ml_dtypes or NumPy dtype).astype(float64) (rounds via float32); "
          "peak extra: tracemalloc peak minus the output")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
