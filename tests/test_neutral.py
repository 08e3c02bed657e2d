"""The pipeline and the methods import no deep-learning framework."""

from __future__ import annotations

import subprocess
import sys


def test_methods_and_pipeline_import_without_any_framework():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'tensorflow', 'jax', 'keras'):\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import eli5_nn, eli5_nn.methods, eli5_nn.explain, eli5_nn.modalities.image\n"
        "assert eli5_nn.registration.register_all() == []\n"
        "assert not {'torch', 'tensorflow', 'jax', 'keras'} & set(sys.modules)\n"
        "print(sorted(eli5_nn.METHODS))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "grad-cam" in out.stdout
