"""The napari writer: Image layers to TIFF with their pixel size, read back by the reader."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_srcnn._reader import napari_get_reader
from napari_srcnn._writer import write_image_layer


def _roundtrip(path):
    reader = napari_get_reader(str(path))
    assert reader is not None
    return reader(str(path))


def _layer_meta(layer):
    _, meta, _ = layer.as_layer_data_tuple()
    return meta


@pytest.mark.parametrize("suffix", [".tif", ".ome.tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_zstack_roundtrip_keeps_pixel_size_and_unit(tmp_path, camera, dtype, suffix):
    from napari.layers import Image

    data = np.stack([camera[:40, :50], camera[40:80, :50], camera[80:120, :50]]).astype(dtype)
    layer = Image(data, scale=(2.0, 0.325, 0.325), units=("µm", "µm", "µm"), name="z")
    path = tmp_path / f"z{suffix}"
    assert write_image_layer(str(path), data, _layer_meta(layer)) == [str(path)]
    with tifffile.TiffFile(path) as tif:  # .ome.tif is OME-TIFF, .tif an ImageJ hyperstack
        assert (tif.is_ome, tif.is_imagej) == (suffix == ".ome.tif", suffix == ".tif")
    [(array, kwargs, _)] = _roundtrip(path)
    np.testing.assert_array_equal(array, data)
    assert array.dtype == dtype
    assert kwargs["scale"] == pytest.approx((2.0, 0.325, 0.325), rel=1e-5)
    assert {str(u) for u in kwargs["units"]} == {"micrometer"}
    assert kwargs["axis_labels"] == ("z", "y", "x")


def test_rgb_layer_roundtrip(tmp_path, astronaut):
    from napari.layers import Image

    layer = Image(astronaut, rgb=True, scale=(0.5, 0.5))
    path = tmp_path / "rgb.tif"
    write_image_layer(str(path), astronaut, _layer_meta(layer))
    [(array, kwargs, _)] = _roundtrip(path)
    assert kwargs["rgb"] and array.shape == astronaut.shape
    assert kwargs["scale"] == pytest.approx((0.5, 0.5))
    with tifffile.TiffFile(path) as tif:  # Fiji sees the pixel size too
        assert tif.pages[0].tags["XResolution"].value == (2, 1)


def test_reader_axes_are_written_back(tmp_path):
    data = np.zeros((2, 3, 8, 9), np.uint16)
    meta = {
        "scale": (1.0, 1.5, 0.2, 0.2),
        "rgb": False,
        "units": None,
        "metadata": {"axes": "TZYX", "unit": "µm"},
    }
    path = tmp_path / "tz.tif"
    write_image_layer(str(path), data, meta)
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "TZYX"
        assert tif.imagej_metadata["spacing"] == pytest.approx(1.5)
    [(_, kwargs, _)] = _roundtrip(path)
    assert kwargs["scale"] == pytest.approx((1.0, 1.5, 0.2, 0.2))


def test_multiscale_and_dask_layers_write_full_resolution(tmp_path, camera):
    da = pytest.importorskip("dask.array")
    pyramid = [da.from_array(camera), da.from_array(camera[::2, ::2])]
    path = tmp_path / "pyramid.tif"
    write_image_layer(str(path), pyramid, {"scale": (1.0, 1.0), "rgb": False})
    np.testing.assert_array_equal(tifffile.imread(path), camera)


@pytest.mark.gui
def test_napari_saves_a_layer_with_this_writer(make_napari_viewer, tmp_path, camera):
    viewer = make_napari_viewer()
    layer = viewer.add_image(camera[:32, :32], scale=(0.4, 0.4), name="cam")
    path = tmp_path / "saved.tif"
    written = viewer.layers.save(str(path), selected=False, plugin="napari-srcnn")
    assert written == [str(path)]
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].tags["XResolution"].value == (5, 2)
    assert layer.name == "cam"
