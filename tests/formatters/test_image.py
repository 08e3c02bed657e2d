"""eli5_nn.format_as_image: panels, labels, signed and unsigned maps, scales."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import eli5_nn
from eli5_nn.formatters.colors import overlay
from eli5_nn.formatters.maps import display_maps, signed_map
from eli5_nn.formatters.views import Options
from eli5_nn.layout import Layout
from eli5_nn.results import NNTargetExplanation

from .factories import image_explanation, picture, text_explanation


def _rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


def test_one_panel_per_target_and_the_original_on_request():
    expl = image_explanation(size=16, targets=[("a", 1.0), ("b", 0.5), ("c", 0.2)])
    bare = eli5_nn.format_as_image(expl, labels=False, legend=False, min_size=16)
    # 3 panels of 16 px with 8 px gaps and margins
    assert bare.size == (8 + 3 * (16 + 8), 8 + 16 + 8)
    with_input = eli5_nn.format_as_image(expl, labels=False, legend=False, min_size=16,
                                         show_original=True)
    assert with_input.width == bare.width + 16 + 8
    left = _rgb(with_input)[8:24, 8:24]
    assert np.abs(left - _rgb(picture(16))).max() <= 1  # the untouched input comes first


def test_small_pictures_are_enlarged_and_labels_drawn():
    expl = image_explanation(size=8)
    img = eli5_nn.format_as_image(expl, min_size=64)
    assert img.mode == "RGB" and img.width > 2 * 64
    bare = eli5_nn.format_as_image(expl, min_size=64, labels=False)
    assert img.height > bare.height  # captions take room
    caption = _rgb(img)[8 + 20 + 64 + 2:, 8:8 + 64]
    assert (caption.sum(axis=-1) < 300).any()  # dark text under the first panel


def test_unsigned_overlay_follows_the_heatmap_and_opacity():
    expl = image_explanation(size=16, targets=[("a", 1.0)])
    t = expl.targets[0]
    m = np.asarray(t.heatmap)
    img = overlay(expl.image, m, False, Options().cmap, 0.65, Image.Resampling.BILINEAR)
    diff = np.abs(_rgb(img) - _rgb(expl.image)).sum(axis=-1)
    peak, low = np.unravel_index(np.argmax(m), m.shape), np.unravel_index(np.argmin(m), m.shape)
    assert diff[peak] > 50 and diff[low] < 10
    clear = overlay(expl.image, m, False, Options().cmap, 0.0, Image.Resampling.BILINEAR)
    assert np.abs(_rgb(clear) - _rgb(expl.image)).max() == 0  # alpha_limit=0: the input only


def test_signed_maps_are_green_for_and_red_against():
    expl = image_explanation(size=16, targets=[("a", 1.0)])
    img = eli5_nn.format_as_image(expl, signed=True, alpha_limit=1.0, labels=False,
                                  legend=False, min_size=16)
    panel = _rgb(img)[8:24, 8:24]
    s = signed_map(expl.targets[0])
    pos, neg = np.unravel_index(np.argmax(s), s.shape), np.unravel_index(np.argmin(s), s.shape)
    r, g, _ = panel[pos]
    assert g > r + 60
    r, g, _ = panel[neg]
    assert r > g + 60


def test_shared_scale_makes_weaker_targets_fainter():
    expl = image_explanation(size=16, targets=[("strong", 1.0), ("weak", 0.1)])
    per = display_maps([expl.targets], signed=True, scale="target")[0]
    shared = display_maps([expl.targets], signed=True, scale="explanation")[0]
    assert np.isclose(np.abs(per[1].values).max(), 1.0)
    assert np.isclose(np.abs(shared[1].values).max(), 0.1)
    assert shared[0].vmax == shared[1].vmax == pytest.approx(per[0].vmax)
    fixed = display_maps([expl.targets], signed=True, scale=2 * per[0].vmax)[0]
    assert np.isclose(np.abs(fixed[0].values).max(), 0.5)
    # unsigned heatmaps on a common scale are weighted by the targets' peaks
    unsigned = display_maps([expl.targets], signed=False, scale="explanation")[0]
    assert np.isclose(unsigned[1].values.max(), 0.1)


def test_shared_scale_across_explanations():
    a = image_explanation(targets=[("a", 1.0)])
    b = image_explanation(targets=[("b", 0.5)])
    maps = display_maps([a.targets, b.targets], signed=True, scale="shared")
    assert maps[0][0].vmax == maps[1][0].vmax
    assert np.isclose(np.abs(maps[1][0].values).max(), 0.5)
    img = eli5_nn.format_as_image([a, b], scale="shared", signed=True)
    assert img.height > eli5_nn.format_as_image(a, signed=True).height  # two rows


@pytest.mark.parametrize("channels_last", [False, True])
def test_signed_map_finds_the_channel_axis(channels_last):
    expl = image_explanation(size=12, channels=3, channels_last=channels_last,
                             targets=[("a", 1.0)])
    t = expl.targets[0]
    expected = np.moveaxis(t.attribution, -1, 0).sum(0) if channels_last else \
        t.attribution.sum(0)
    assert np.allclose(signed_map(t), expected)


@pytest.mark.parametrize("axes", ["CHW", "HWC"])
def test_signed_map_reads_the_layout_of_a_cube_layer_map(axes):
    # a CAM-like (8, 8, 8) layer map: both end axes could be the channels; the layout says which
    rng = np.random.default_rng(0)
    cube = rng.standard_normal((8, 8, 8))
    axis = axes.index("C")
    cam = cube.sum(axis=axis)
    from eli5_nn.modalities.image import normalise, resize_map

    t = NNTargetExplanation(target=0, heatmap=normalise(np.clip(resize_map(cam, (16, 16)), 0,
                                                                None)),
                            attribution=cube, layout=Layout(axes))
    assert np.allclose(signed_map(t), resize_map(cam, (16, 16)))
    other = 2 - axis
    assert np.allclose(signed_map(t, channel_axis=other), resize_map(cube.sum(other), (16, 16)))


def test_signed_map_of_a_vit_token_sequence_drops_the_class_token_and_uses_the_grid():
    tokens = np.arange(1 + 4 * 4, dtype=np.float64)  # class token, then a 4×4 grid
    row = np.repeat(tokens[:, None], 3, axis=1)  # (T, C)
    t = NNTargetExplanation(target=0, heatmap=np.ones((8, 8)), attribution=row,
                            layout=Layout("TC", prefix_tokens=1, grid=(4, 4)))
    from eli5_nn.modalities.image import resize_map

    expected = resize_map(3 * np.arange(1, 17, dtype=np.float64).reshape(4, 4), (8, 8))
    assert np.allclose(signed_map(t), expected)


def test_signed_map_without_a_layout_draws_maps_only():
    from eli5_nn.modalities.image import resize_map

    plain = np.arange(16, dtype=np.float64).reshape(4, 4)
    t = NNTargetExplanation(target=0, heatmap=np.ones((8, 8)), attribution=plain)
    assert np.allclose(signed_map(t), resize_map(plain, (8, 8)))
    cube = NNTargetExplanation(target=0, heatmap=np.ones((8, 8)), attribution=np.ones((3, 4, 4)))
    with pytest.raises(ValueError, match="no layout saying which axis holds the channels"):
        signed_map(cube)
    assert np.allclose(signed_map(cube, channel_axis=0), np.full((8, 8), 3.0))


def test_errors_say_what_to_do():
    text = text_explanation(["good", "film"], [0.5, -0.2])
    with pytest.raises(TypeError, match="format_as_html"):
        eli5_nn.format_as_image(text)
    expl = image_explanation()
    with pytest.raises(ValueError, match="scale"):
        eli5_nn.format_as_image(expl, scale="global")
    with pytest.raises(ValueError, match="scale"):
        eli5_nn.format_as_image(expl, scale=-1.0)
    with pytest.raises(ValueError, match="alpha_limit"):
        eli5_nn.format_as_image(expl, alpha_limit=1.5)
    with pytest.raises(ValueError, match="colormap"):
        eli5_nn.format_as_image(expl, colormap="no-such-map")
    with pytest.raises(TypeError, match="Explanation"):
        eli5_nn.format_as_image([])
    expl.targets[0].attribution = None
    with pytest.raises(ValueError, match="attribution"):
        eli5_nn.format_as_image(expl, signed=True)
    assert eli5_nn.format_as_image(expl).width > 0  # unsigned maps need only the heatmap


def test_colormap_may_be_a_callable_as_in_eli5():
    expl = image_explanation(targets=[("a", 1.0)])

    def red(t: np.ndarray) -> np.ndarray:
        out = np.zeros((*t.shape, 4))
        out[..., 0] = 1.0
        out[..., 3] = 1.0
        return out

    img = eli5_nn.format_as_image(expl, colormap=red, alpha_limit=1.0, labels=False,
                                  legend=False, min_size=16)
    panel = _rgb(img)[8:24, 8:24]
    h = expl.targets[0].heatmap
    assert tuple(panel[np.unravel_index(np.argmax(h), h.shape)]) == (255, 0, 0)
