"""Speed of refopt's optimizers, as ratios against baselines measured in the same run.

    python benchmarks/optim.py [--repeat N]

1. A quantized Adam step (W, G, m, v all bf16, round to nearest even, including the
   weight and gradient quantization of ``quantized_grad``) vs the same step unquantized,
   on 10**6 parameters (target <= 2x).
2. A Muon step with exact SVD orthogonalization on a 512 x 512 matrix vs
   ``numpy.linalg.svd`` of that matrix alone (target <= 1.2x).
3. Newton-Schulz (5 quintic steps) vs SVD orthogonalization at several sizes.

Times are the minimum over ``--repeat`` runs (default 7). BLAS runs on one thread
unless ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` are set (ratios on a shared
machine are otherwise dominated by thread contention).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from refopt.optim import Precision, adam, msign, muon, newton_schulz, quantized_grad  # noqa: E402


def best(fn: Callable[[], object], repeat: int) -> float:
    """Minimum wall time of ``fn()`` over ``repeat`` runs (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def adam_step(precision: Precision, n: int, repeat: int) -> float:
    rng = np.random.default_rng(0)
    w = rng.standard_normal(n)
    g = rng.standard_normal(n)
    opt = adam(1e-3, variant="practical", precision=precision)
    state = opt.update(w, g, opt.init(w))[1]  # non-zero moments

    def step() -> object:
        gq = quantized_grad(lambda wq: g, w, precision)
        return opt.update(w, gq, state)

    return best(step, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    r = args.repeat

    n = 10**6
    exact_t = adam_step(Precision(), n, r)
    bf16_t = adam_step(Precision("bf16", "bf16", "bf16", "bf16"), n, r)
    print(f"Adam step, 1e6 params: unquantized {exact_t * 1e3:7.2f} ms, W/G/m/v bf16 {bf16_t * 1e3:7.2f} ms, "
          f"ratio {bf16_t / exact_t:.2f}x (target <= 2x)")

    rng = np.random.default_rng(1)
    W = rng.standard_normal((512, 512))
    G = rng.standard_normal((512, 512))
    opt = muon(0.02)
    state = opt.init(W)
    svd_t = best(lambda: np.linalg.svd(G, full_matrices=False), r)
    muon_t = best(lambda: opt.update(W, G, state), r)
    print(f"Muon step 512x512 (SVD): {muon_t * 1e3:7.2f} ms, numpy.linalg.svd alone {svd_t * 1e3:7.2f} ms, "
          f"ratio {muon_t / svd_t:.2f}x (target <= 1.2x)")

    print("orthogonalization: size, msign (SVD) ms, newton_schulz (5 steps) ms, NS5/SVD")
    for size in (64, 128, 256, 512, 1024):
        M = rng.standard_normal((size, size // 2 if size > 64 else size))
        s_t = best(lambda: msign(M), max(3, r // 2))
        ns_t = best(lambda: newton_schulz(M), max(3, r // 2))
        print(f"  {M.shape!s:>12}  {s_t * 1e3:9.2f}  {ns_t * 1e3:9.2f}  {ns_t / s_t:6.2f}")


if __name__ == "__main__":
    main()
