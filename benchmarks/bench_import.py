"""Start-up: the wall time of importing eli5-nn, against importing torch.

Each command runs in a fresh Python process (``python -c ...``), the commands
alternate, ``REPEATS`` times each; the median is kept. The default Keras
backend (TensorFlow) is left as is, so that any import of Keras or TensorFlow
would show.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

REPEATS = 5
COMMANDS = {
    "import eli5_nn": "import eli5_nn, sys; assert 'tensorflow' not in sys.modules",
    "import eli5_nn, eli5, torch": "import eli5_nn, eli5, torch",
    "import eli5 (0.16 alone)": "import eli5",
    "import torch": "import torch",
}


def _time(code: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Rows {framework, method, ours_s, floor_s, ratio, note}: each import against
    ``import torch``."""
    repeats = 3 if quick else REPEATS
    times: dict[str, list[float]] = {k: [] for k in COMMANDS}
    for _ in range(repeats):
        for name, code in COMMANDS.items():
            times[name].append(_time(code))
    med = {k: float(np.median(v)) for k, v in times.items()}
    floor = med["import torch"]
    return [{"framework": "start-up", "method": name, "ours_s": t, "floor_s": floor,
             "ratio": t / floor, "note": "floor = python -c 'import torch'"}
            for name, t in med.items() if name != "import torch"]


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
