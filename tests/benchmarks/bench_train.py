"""Training loop: compiled multi-step scan vs one jitted step per Python iteration; monitor cost.

``hesscli train`` runs the optimizer inside one ``lax.scan`` between logged
steps. This measures what that buys over dispatching a jitted step from
Python each iteration, and what one monitoring point (value, gradient, dense
spectrum, step model) costs in optimizer steps, on the ``mlp`` problem.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.benchmarks.common import block, print_table, timeit


def measure(width: int, length: int = 100) -> dict[str, Any]:
    """Seconds per step (scan, Python loop) and per monitoring point at this width."""
    import jax
    import jax.numpy as jnp

    from hesscli.api import load
    from hesscli.curvature.exact import ExactCurvature
    from hesscli.training.loop import TrainConfig, build_chunk, initial_state, keys, optimizer_for
    from hesscli.training.monitor import monitor

    obj = load("mlp", None, (f"width={width}",), seed=0, dtype="float64", method="auto")
    cur = ExactCurvature(obj)
    config = TrainConfig(optimizer="momentum", lr=0.01, noise=1.0)
    opt = optimizer_for(config)
    state = initial_state(obj, opt, float(cur.value(obj.x)))
    chunk = build_chunk(obj, opt, None)
    _, data_key = keys(0)
    carry = (jnp.asarray(state.x), state.opt_state, jnp.asarray(0, jnp.int32),
             jnp.asarray(True), jnp.asarray(0, jnp.int32), jnp.asarray(0, jnp.int32))
    block(chunk(carry, None, data_key, 1e30, length=length))
    scan_step = timeit(lambda: block(chunk(carry, None, data_key, 1e30, length=length)),
                       repeat=3) / length

    @jax.jit
    def one(x: Any, s: Any) -> Any:
        g = jax.grad(obj.flat_fn)(x)
        u, s = opt.update(g, s, x)
        return x + u, s

    def python_loop() -> None:
        x, s = jnp.asarray(state.x), state.opt_state
        for _ in range(length):
            x, s = one(x, s)
        block(x)

    python_loop()
    loop_step = timeit(python_loop, repeat=3) / length
    x = np.asarray(state.x)
    monitor(cur, x, 0, 0.01)
    mon = timeit(lambda: monitor(cur, x, 0, 0.01), repeat=3, min_time=0.2)
    return {"n": obj.n, "scan_step_s": scan_step, "python_step_s": loop_step,
            "monitor_s": mon}


def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    rows = []
    for width in (8, 32):
        r = results[f"width={width}"] = measure(width)
        rows.append([width, r["n"], f"{r['scan_step_s'] * 1e6:.1f}",
                     f"{r['python_step_s'] * 1e6:.1f}",
                     f"{r['python_step_s'] / r['scan_step_s']:.1f}x",
                     f"{r['monitor_s'] * 1e3:.2f}", f"{r['monitor_s'] / r['scan_step_s']:.0f}"])
    print_table("train loop (momentum + sphere noise, full batch, mlp)",
                ["width", "n", "scan µs/step", "python µs/step", "speed-up", "monitor ms",
                 "monitor in steps"], rows)
    return results


if __name__ == "__main__":
    main()
