"""Intensity control in the upscale widget, in a real viewer: the normalisation choice
reaches the engine, the map used is shown and stored, and the result keeps the source's
range and contrast limits (a dim 16-bit layer must not come back as a white square)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from napari_srcnn.widgets._intensity import describe_maps, normalization_maps

pytestmark = pytest.mark.gui


def _setup(widget, layer, model, **values):
    widget.reset_choices()
    widget._image.value = layer
    widget._model.value = model
    widget._scale.value = 2.0
    for key, value in values.items():
        getattr(widget, f"_{key}").value = value


@pytest.fixture
def dim(camera):
    """A 16-bit layer whose values sit at 98–175 (a dim fluorescence image)."""
    texture = camera[32:96, 32:96].astype(np.float64)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    return np.round(98 + 77 * texture).astype(np.uint16)


def test_dim_uint16_layer_upscaled_with_the_defaults_keeps_its_range(
    qtbot, run_widget, viewer, widget, tiny_model, dim
):
    source = viewer.add_image(dim, name="dim")
    lo, hi = source.contrast_limits
    assert (lo, hi) == (98, 175)
    _setup(widget, source, tiny_model)
    assert widget._normalization.value == "auto"  # the default
    run_widget(widget)
    out = viewer.layers["dim ×2 SRCNN"]
    assert out.data.dtype == np.uint16
    p1, p99 = np.percentile(out.data, [1, 99])
    q1, q99 = np.percentile(dim, [1, 99])
    print(f"\nsource 1–99 %: {q1:.0f}–{q99:.0f}; result: {p1:.0f}–{p99:.0f}")
    # the result lies where the source lies, with its contrast, not in a sliver of uint16
    assert lo - 10 <= p1 and p99 <= hi + 10
    assert p99 - p1 > 0.7 * (q99 - q1)
    assert np.mean(out.data >= hi) < 0.05 and np.mean(out.data <= lo) < 0.05
    # the same contrast limits show it alike, and the map used is shown and stored
    np.testing.assert_allclose(out.contrast_limits, (lo, hi))
    [used] = out.metadata["srcnn"]["normalization_maps"]
    assert used["kind"] == "percentile" and lo <= used["low"] < used["high"] <= hi
    assert "intensities" in widget._status.value and "(percentile)" in widget._status.value
    assert "contrast limits" not in widget._status.value  # no fallback was needed


def test_normalisation_precision_and_percentiles_reach_the_engine(
    qtbot, run_widget, viewer, widget, tiny_model, dim
):
    from napari_srcnn.engine.options import NORMALIZATIONS, PRECISIONS

    assert sorted(widget._normalization.choices) == sorted(NORMALIZATIONS)
    assert list(widget._precision.choices) == list(PRECISIONS)
    source = viewer.add_image(dim, name="dim")
    assert widget._percentiles.native.isHidden()
    _setup(widget, source, tiny_model, normalization="percentile", precision="fp32")
    assert not widget._percentiles.native.isHidden()  # shown only for the percentile map
    widget._low.value, widget._high.value = 1.0, 99.0
    run_widget(widget)
    meta = viewer.layers["dim ×2 SRCNN"].metadata["srcnn"]
    assert meta["normalization"] == "percentile" and meta["percentiles"] == [1.0, 99.0]
    assert meta["precision"] == "fp32" and meta["precision_used"] == "fp32"
    [used] = meta["normalization_maps"]
    assert used["kind"] == "percentile"
    assert used["low"] == pytest.approx(np.percentile(dim, 1), abs=1)
    assert used["high"] == pytest.approx(np.percentile(dim, 99), abs=1)
    # the dtype map: 0–65535 for uint16, said in the status line
    widget._normalization.value = "dtype"
    assert widget._percentiles.native.isHidden()
    run_widget(widget)
    [used] = viewer.layers["dim ×2 SRCNN"].metadata["srcnn"]["normalization_maps"]
    assert (used["kind"], used["low"], used["high"]) == ("dtype", 0.0, 65535.0)
    assert "intensities 0–65535 → 0–1 (dtype)" in widget._status.value


@pytest.fixture
def offset_model(tmp_path):
    """A model whose answer lies 2 above its input (an identity network with a last bias of
    2): a result outside any contrast limits that suit the source."""
    import torch

    from napari_srcnn.engine import weights
    from napari_srcnn.engine.model import SRCNN, ArchSpec, init_identity
    from napari_srcnn.engine.model_info import ModelInfo
    from napari_srcnn.engine.weights_file import save_weights

    net = init_identity(SRCNN(ArchSpec.parse("3-1-3:8,4")), scale=0.0)
    with torch.no_grad():
        net.convs()[-1].bias.fill_(2.0)
    path = save_weights(
        tmp_path / "offset.safetensors",
        net,
        ModelInfo(name="offset-x2", arch=net.spec, scale=2.0, color_mode="per-channel"),
    )
    name = weights.register_model(path).name
    yield name
    weights.unregister_model(name)


def test_a_result_outside_the_contrast_limits_is_shown_with_its_own_range(
    qtbot, run_widget, viewer, widget, offset_model, camera
):
    """An intensity map or model that does not suit the data gives a result outside the
    source's contrast limits. Shown with those limits it would be one flat colour: the widget
    shows it with its own range and says why."""
    data = (0.2 + 0.4 * camera[32:96, 32:96] / 255).astype(np.float32)
    source = viewer.add_image(data, name="offset", contrast_limits=(0.2, 0.6))
    widget.reset_choices()
    _setup(widget, source, offset_model, normalization="none")
    run_widget(widget)
    out = viewer.layers["offset ×2 SRCNN"]
    assert np.mean(out.data >= 0.6) > 0.98  # every value above the source's limits
    low, high = out.contrast_limits
    assert low < high and (low, high) != (0.2, 0.6), widget._status.value
    assert np.mean((out.data >= low) & (out.data <= high)) > 0.9
    assert "above the layer's contrast limits" in widget._status.value


def test_a_source_outside_its_own_limits_keeps_them(
    qtbot, run_widget, viewer, widget, offset_model, camera
):
    """A source that itself lies outside its limits keeps them for its result: the user
    chose them."""
    data = (0.2 + 0.4 * camera[32:96, 32:96] / 255).astype(np.float32)
    same = viewer.add_image(data, name="clipped", contrast_limits=(-3.0, -2.0))
    widget.reset_choices()
    _setup(widget, same, offset_model, normalization="none")
    run_widget(widget)
    np.testing.assert_allclose(viewer.layers["clipped ×2 SRCNN"].contrast_limits, (-3.0, -2.0))


def test_maps_are_read_from_either_plan_shape():
    """``plan.norm`` (one map), ``plan.channel_norms`` or ``plan.norms`` (one per channel)."""
    a = SimpleNamespace(kind="percentile", low=98.0, high=175.0)
    b = SimpleNamespace(kind="percentile", low=10.0, high=4000.0)
    assert normalization_maps(SimpleNamespace(norm=a)) == [a]
    assert normalization_maps(SimpleNamespace(norm=a, channel_norms=())) == [a]
    assert normalization_maps(SimpleNamespace(norm=a, channel_norms=(a, b))) == [a, b]
    assert normalization_maps(SimpleNamespace(norm=a, norms=[b, a])) == [b, a]
    assert describe_maps([a]) == "intensities 98–175 → 0–1 (percentile)"
    assert describe_maps([a, b]) == "channel intensities 98–175, 10–4000 → 0–1 (percentile)"
