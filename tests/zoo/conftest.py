"""The zoo suite's device: ``ELI5_NN_TEST_DEVICE=cuda`` moves models and inputs there
(default ``cpu``); the suite is skipped where that device is missing."""

from __future__ import annotations

import os

import pytest
import torch

DEVICE = os.environ.get("ELI5_NN_TEST_DEVICE", "cpu")


@pytest.fixture(scope="session")
def device() -> str:
    if DEVICE.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"ELI5_NN_TEST_DEVICE={DEVICE} but CUDA is not available")
    return DEVICE
