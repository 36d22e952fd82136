"""The sample data: small files in the wheel, each LR image the MATLAB-bicubic ×1/3 of its
HR original, placed so that both overlay in napari."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from napari_srcnn import _sample_data as samples

PAIRS = {
    "astronaut": ((252, 252, 3), np.uint8, 1),
    "cell": ((252, 252), np.uint8, 1),
    "ihc": ((240, 240), np.uint16, 2),
}


@pytest.mark.parametrize("stem", list(PAIRS))
def test_lr_is_the_bicubic_third_of_hr_and_overlays_it(stem):
    from napari_srcnn.engine.resize import imresize

    shape, dtype, n_layers = PAIRS[stem]
    hr_layers = getattr(samples, f"{stem}_hr")()
    lr_layers = getattr(samples, f"{stem}_lr")()
    assert len(hr_layers) == len(lr_layers) == n_layers
    for (hr, hr_kw, kind), (lr, lr_kw, _) in zip(hr_layers, lr_layers, strict=True):
        assert kind == "image" and hr.shape == shape and hr.dtype == dtype and lr.dtype == dtype
        rgb = hr_kw["rgb"]
        assert rgb == (stem == "astronaut") and lr_kw["rgb"] == rgb
        x = np.moveaxis(hr, -1, 0) if rgb else hr
        expected = imresize(x.astype(np.float64), 1 / 3)
        expected = np.moveaxis(expected, 0, -1) if rgb else expected
        info = np.iinfo(dtype)
        np.testing.assert_array_equal(lr, np.clip(np.round(expected), info.min, info.max))
        # LR pixel i is centred on HR pixel 3i + 1
        assert hr_kw["scale"] == (1.0, 1.0) and "translate" not in hr_kw
        assert lr_kw["scale"] == (3.0, 3.0) and lr_kw["translate"] == (1.0, 1.0)
        assert "LR" in lr_kw["name"] and "HR" in hr_kw["name"]


def test_sample_files_are_small():
    folder = resources.files("napari_srcnn") / "sample_data"
    sizes = {e.name: len(e.read_bytes()) for e in folder.iterdir() if e.name.endswith(".tif")}
    assert len(sizes) == 6
    assert sum(sizes.values()) < 1_000_000, sizes


def test_every_manifest_sample_is_a_function_here():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_distribution("napari-srcnn")
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    keys = []
    for sample in manifest.contributions.sample_data:
        module, name = commands[sample.command].split(":")
        assert module == "napari_srcnn._sample_data" and callable(getattr(samples, name))
        keys.append(sample.key)
    assert sorted(keys) == sorted(f"{s}_{r}" for s in PAIRS for r in ("lr", "hr"))


@pytest.mark.gui
@pytest.mark.parametrize("key", [f"{s}_{r}" for s in PAIRS for r in ("lr", "hr")])
def test_samples_load_in_napari(make_napari_viewer, key):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-srcnn", key)
    stem = key.split("_")[0]
    assert len(viewer.layers) == PAIRS[stem][2]
    layer = viewer.layers[0]
    n = layer.data.shape[0]
    # the pixel footprints of LR and HR cover the same world square: [-0.5, 251.5] (239.5)
    corners = [layer.data_to_world((-0.5, -0.5)), layer.data_to_world((n - 0.5, n - 0.5))]
    edge = PAIRS[stem][0][0] - 0.5
    np.testing.assert_allclose(corners, [[-0.5, -0.5], [edge, edge]])
