"""The gradient step's prediction at huge learning rates: no overflow warnings, an increase.

The predicted change −lr·gᵀg + ½lr²·gᵀHg is computed in a scaled form; at lr = 1e308
it is +inf (an increase), never NaN or a RuntimeWarning. References by hand:
g = (3, −4), H = diag(2, 1): gᵀg = 25, gᵀHg = 34.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from hesscli.analysis.step import predict_step
from tests.helpers import validate


def test_step_prediction_survives_overflow():
    g = np.array([3.0, -4.0])
    hmat = np.array([[2.0, 0.0], [0.0, 1.0]])
    hg = hmat @ g  # gᵀHg = 2·9 + 16 = 34, gᵀg = 25
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = predict_step(1e308, g, hg, 0.0, math.inf)
        nan_after = predict_step(1e308, g, hg, 0.0, math.nan)
    assert big.increases_loss is True and big.predicted_change == math.inf
    assert big.actually_increases is True and nan_after.actually_increases is True
    # moderate lr: the scaled form equals −lr·gᵀg + ½lr²·gᵀHg
    s = predict_step(0.1, g, hg, 1.0, 0.0)
    assert s.predicted_change == pytest.approx(-0.1 * 25 + 0.5 * 0.01 * 34, rel=1e-15)
    assert s.optimal_lr == pytest.approx(25 / 34, rel=1e-15)
    assert s.increases_loss is False


def test_cli_huge_lr_reports_an_increase_without_warnings(hess):
    res = hess("analyze", "rosenbrock", "--at", "0,0", "--lr", "1e308", "--format", "json")
    assert res.exit_code == 0, res.output
    step = res.json()["step"]
    assert step["increases_loss"] is True and step["actually_increases"] is True
    assert res.stderr == ""


def test_landscape_huge_lr_is_quiet_and_valid(hess):
    res = hess("landscape", "rosenbrock", "--at", "0,0", "--lr", "1e308", "--format", "json")
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    doc = res.json()
    validate(doc, "landscape")
    assert doc["step"]["increases_loss"] is True

