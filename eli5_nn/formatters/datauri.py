"""Images as ``data:`` URIs, for self-contained HTML (PIL only)."""

from __future__ import annotations

import io
from base64 import b64encode

import numpy as np
from PIL import Image


def image_data_uri(image: Image.Image, scale: int = 1) -> str:
    """A ``data:image/png;base64,...`` URI of ``image``, enlarged ``scale`` times
    (nearest neighbour, so small inputs stay crisp)."""
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    if image.mode == "RGBA" and int(np.asarray(image.getchannel("A")).min()) == 255:
        image = image.convert("RGB")  # opaque: a quarter less to encode
    buf = io.BytesIO()
    # fast zlib level: rendering stays a small part of explaining (benchmarks/bench_render.py)
    image.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + b64encode(buf.getvalue()).decode("ascii")


__all__ = ["image_data_uri"]
