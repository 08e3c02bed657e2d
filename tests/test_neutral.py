"""The pipeline and the methods import no deep-learning framework."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ("torch", "tensorflow", "jax", "keras")


def run_without_frameworks(body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh Python whose imports of torch, TensorFlow, JAX and
    Keras fail, then check that none of them got imported."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {FRAMEWORKS!r}:\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        + body
        + f"assert not set({FRAMEWORKS!r}) & set(sys.modules)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)


def test_methods_and_pipeline_import_without_any_framework():
    out = run_without_frameworks(
        "import eli5_nn, eli5_nn.methods, eli5_nn.explain, eli5_nn.modalities.image\n"
        "assert eli5_nn.registration.register_all() == []\n"
        "print(sorted(eli5_nn.METHODS))\n"
    )
    assert out.returncode == 0, out.stderr
    assert "grad-cam" in out.stdout
