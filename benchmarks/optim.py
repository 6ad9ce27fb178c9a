"""Speed of refopt's optimizers, as ratios against baselines measured in the same run.

    python benchmarks/optim.py [--repeat N]

1. A quantized Adam step (W, G, m, v all bf16, round to nearest even, including the
   weight and gradient quantization of ``quantized_grad``) vs the same step unquantized,
   on 10**6 parameters (target <= 2x), and the quantizer alone on 10**6 values: the
   step makes four such calls (W, G, m, v), which account for the ratio. Also the
   unquantized step in float32 working precision (``dtype=np.float32``) vs float64.
2. A Muon step with exact SVD orthogonalization on a 512 x 512 matrix vs
   ``numpy.linalg.svd`` of that matrix alone (target <= 1.2x).
3. Newton-Schulz (5 quintic steps) vs SVD orthogonalization at several sizes.

Each comparison runs the two sides alternately, ``--repeat`` times (default 15, after
one warm-up call each), and reports the median time of each side and the median of the
paired ratios: on a shared machine the load changes between calls, and pairing
neighbouring calls cancels most of it. BLAS runs on one thread unless
``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` are set (ratios are otherwise dominated
by thread contention).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from refopt import quantize  # noqa: E402
from refopt.optim import Precision, adam, msign, muon, newton_schulz, quantized_grad  # noqa: E402


def paired(fn: Callable[[], object], base: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """Median times of ``fn`` and ``base`` and the median ratio, timed alternately."""
    fn()
    base()
    times: list[tuple[float, float]] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        base()
        times.append((t1 - t0, time.perf_counter() - t1))
    a, b = np.array(times).T
    return float(np.median(a)), float(np.median(b)), float(np.median(a / b))


def adam_step(precision: Precision, n: int, dtype: type = np.float64) -> Callable[[], object]:
    """One framework step of practical Adam on ``n`` parameters (non-zero moments)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    opt = adam(1e-3, variant="practical", precision=precision, dtype=dtype)
    state = opt.update(w, g, opt.init(w))[1]

    def step() -> object:
        gq = quantized_grad(lambda wq: g, w, opt)
        return opt.update(w, gq, state)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    r = args.repeat

    n = 10**6
    bf16 = Precision("bf16", "bf16", "bf16", "bf16")
    q_t, e_t, ratio = paired(adam_step(bf16, n), adam_step(Precision(), n), r)
    print(f"Adam step, 1e6 params: unquantized {e_t * 1e3:7.2f} ms, W/G/m/v bf16 {q_t * 1e3:7.2f} ms, "
          f"ratio {ratio:.2f}x (target <= 2x)")
    f32_t, f64_t, ratio = paired(adam_step(Precision(), n, np.float32), adam_step(Precision(), n), r)
    print(f"  unquantized step in float32 (dtype=np.float32) {f32_t * 1e3:.2f} ms vs float64 {f64_t * 1e3:.2f} ms, "
          f"ratio {ratio:.2f}x")
    x = np.random.default_rng(2).standard_normal(n)
    q1_t, e1_t, _ = paired(lambda: quantize(x, "bf16"), adam_step(Precision(), n), r)
    print(f"  the quantizer alone: refopt.quantize(1e6 float64 -> bf16) {q1_t * 1e3:.2f} ms next to an "
          f"unquantized step of {e1_t * 1e3:.2f} ms; the 4 calls of a step (W, G, m, v) explain a ratio of "
          f"about {1 + 4 * q1_t / e1_t:.2f}")

    rng = np.random.default_rng(1)
    W = rng.standard_normal((512, 512))
    G = rng.standard_normal((512, 512))
    opt = muon(0.02)
    state = opt.init(W)
    muon_t, svd_t, ratio = paired(lambda: opt.update(W, G, state), lambda: np.linalg.svd(G, full_matrices=False), r)
    print(f"Muon step 512x512 (SVD): {muon_t * 1e3:7.2f} ms, numpy.linalg.svd alone {svd_t * 1e3:7.2f} ms, "
          f"ratio {ratio:.2f}x (target <= 1.2x)")

    print("orthogonalization: shape, msign (SVD) ms, newton_schulz (5 steps) ms, NS5/SVD")
    for size in (64, 128, 256, 512, 1024):
        M = rng.standard_normal((size, size // 2 if size > 64 else size))
        ns_t, s_t, ratio = paired(lambda: newton_schulz(M), lambda: msign(M), max(5, r // 2))
        print(f"  {M.shape!s:>12}  {s_t * 1e3:9.2f}  {ns_t * 1e3:9.2f}  {ratio:6.2f}")


if __name__ == "__main__":
    main()
