"""``--dtype float32`` on the example networks computes in float32 throughout.

hesscli runs JAX with 64-bit types enabled, so a NumPy float64 scalar in a
network's forward pass (``scores / np.sqrt(d_head)``) silently promotes every
later operation of a float32 run to float64: the transformer's float32 HVP then
cost 1.5× its all-float32 form (tests/benchmarks/profile_hvp.py) and did not
compute what its torch twin computes. These tests trace the programs hesscli
compiles (the value, the gradient, the HVP by forward-over-reverse) at float32
and look for float64 arrays in them (float64 *scalars* are allowed: the loss's
NaN for an invalid label is one, and is weakly typed), and check that the
float32 value and HVP agree with the float64 ones to float32's accuracy (the
same function, rounded differently).
"""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest

from hesscli.api import load
from tests.conftest import ROOT

pytest.importorskip("flax")

CASES = {
    "transformer": (str(ROOT / "examples" / "transformer_lm.py"),
                    ["d_model=8", "layers=2", "heads=2", "context=8", "sequences=4"]),
    "cnn": (str(ROOT / "examples" / "cnn.py"), ["channels=2", "samples=40"]),
}
F64_ARRAY = re.compile(r"f64\[\d")  # a float64 array of rank ≥ 1 in a printed jaxpr


@pytest.fixture(scope="module", params=sorted(CASES))
def objectives(request):
    target, params = CASES[request.param]
    return {dt: load(target, None, params, seed=0, dtype=dt) for dt in ("float32", "float64")}


def hvp(f):
    return lambda x, v: jax.jvp(jax.grad(f), (x,), (v,))[1]


def test_float32_programs_hold_no_float64_arrays(objectives):
    obj = objectives["float32"]
    x = jax.numpy.asarray(np.asarray(obj.x), dtype=np.float32)
    for name, program, args in (("value", obj.flat_fn, (x,)),
                                ("gradient", jax.grad(obj.flat_fn), (x,)),
                                ("hvp", hvp(obj.flat_fn), (x, x))):
        text = str(jax.make_jaxpr(program)(*args))
        found = sorted({line.strip()[:120] for line in text.splitlines()
                        if F64_ARRAY.search(line)})
        assert not found, f"{name}: float64 arrays in a float32 program: {found[:3]}"


def test_float32_agrees_with_float64_to_float32_accuracy(objectives):
    o32, o64 = objectives["float32"], objectives["float64"]
    x64 = np.asarray(o64.x, dtype=np.float64)
    x32 = x64.astype(np.float32)  # the float32 point is the float64 one rounded
    np.testing.assert_array_equal(np.asarray(o32.x, dtype=np.float32), x32)
    v = np.random.default_rng(0).standard_normal(x64.size)
    f32 = float(o32.flat_fn(jax.numpy.asarray(x32)))
    f64 = float(o64.flat_fn(jax.numpy.asarray(x32.astype(np.float64))))
    # rounding of a few hundred float32 operations per output: well under 1e-4
    assert abs(f32 - f64) <= 1e-5 * abs(f64)
    h32 = np.asarray(jax.jit(hvp(o32.flat_fn))(jax.numpy.asarray(x32),
                                               jax.numpy.asarray(v, np.float32)), np.float64)
    h64 = np.asarray(jax.jit(hvp(o64.flat_fn))(jax.numpy.asarray(x32.astype(np.float64)),
                                               jax.numpy.asarray(v)))
    assert np.linalg.norm(h32 - h64) <= 1e-3 * np.linalg.norm(h64)
