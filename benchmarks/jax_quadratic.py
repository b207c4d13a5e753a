"""Standalone JAX run of the quadratic with classic clipping: the whole-process peer of

    python -m simulations run --problem quadratic --dim D --clip classic --lam 1 \\
        --schedule "0.05/(1+t/100)" --paths R --steps T --record running_max --quiet --out OUT

ℓ(θ; y) = ½‖θ − y‖², y ~ N(0, I_D), θ(0) = 0, B = 1, g/c = optax.clip_by_global_norm(1),
a(t) = 0.05/(1 + t/100); the engine's blow-up guard and its running maxima max_s ‖θ(s) − θ(0)‖
and max_s ‖θ(s)‖ are kept. jax.vmap over paths, jax.jit, lax.scan over the steps, the normals
drawn with jax.random inside the scan. It imports nothing of this repository (and no torch), so
its wall time is JAX's start-up, compilation and run; with ``--out`` the endpoints and maxima
are written to an .npz, as the engine writes its arrays.

    python benchmarks/jax_quadratic.py --dim 10 --paths 65536 --steps 1000 [--dtype float32]
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=1)
    parser.add_argument("--paths", type=int, default=65536)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lam", type=float, default=1.0)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write endpoints and maxima to this .npz")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    import jax

    jax.config.update("jax_enable_x64", args.dtype == "float64")
    import jax.numpy as jnp
    import numpy as np
    import optax

    dt = jnp.float64 if args.dtype == "float64" else jnp.float32
    guard = 1e100 if args.dtype == "float64" else 1e18
    clip = optax.clip_by_global_norm(args.lam)
    paths, dim = args.paths, args.dim

    def step(state, y, a):
        theta, alive, mdev, mnorm = state
        g = theta - y
        d, _ = clip.update(g, clip.init(g))
        cand = theta - a * d
        cnorm = jnp.linalg.norm(cand)
        ok = alive & jnp.isfinite(jnp.linalg.norm(d)) & (cnorm <= guard)
        theta = jnp.where(ok, cand, theta)
        mdev = jnp.where(ok, jnp.maximum(mdev, cnorm), mdev)  # θ(0) = 0
        mnorm = jnp.where(ok, jnp.maximum(mnorm, cnorm), mnorm)
        return theta, ok, mdev, mnorm

    vstep = jax.vmap(step, in_axes=((0, 0, 0, 0), 0, None))

    @jax.jit
    def run(key):
        def body(state, t):
            y = jax.random.normal(jax.random.fold_in(key, t), (paths, dim), dt)
            return vstep(state, y, (0.05 / (1.0 + t.astype(dt) / 100.0)).astype(dt)), None

        state = (jnp.zeros((paths, dim), dt), jnp.ones(paths, bool), jnp.zeros(paths, dt),
                 jnp.zeros(paths, dt))
        return jax.lax.scan(body, state, jnp.arange(args.steps, dtype=jnp.int32))[0]

    theta, alive, mdev, mnorm = jax.block_until_ready(run(jax.random.key(args.seed)))
    theta, mdev, mnorm = np.asarray(theta), np.asarray(mdev), np.asarray(mnorm)
    if args.out:
        np.savez(args.out, endpoints=theta, max_deviation=mdev, max_norm=mnorm,
                 blown=~np.asarray(alive))
    print(f"quadratic {dim}-D, {paths} paths × {args.steps} steps ({args.dtype}): mean ‖θ(T)‖ "
          f"{np.linalg.norm(theta, axis=1).mean():.4f}, mean max‖θ‖ {mnorm.mean():.4f}; "
          f"{time.perf_counter() - start:.2f} s in the process")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
