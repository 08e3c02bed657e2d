"""The torch adapter runs the model in inference mode for the call and restores it.

(Model left as found - modes, requires_grad, .grad, state, hooks - also when the
call or the forward pass raises, and threads sharing one model: tests/conformance/,
for every method of the table.)"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from eli5_nn import explain_prediction_nn as explain


def test_inference_mode_is_used_during_the_call():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.9), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3)).train()
    x = torch.rand(1, 3, 8, 8)
    a = explain(model, x, method="gradient").targets[0].attribution
    b = explain(model, x, method="gradient").targets[0].attribution
    np.testing.assert_array_equal(a, b)  # dropout off: deterministic
    assert model.training
