"""The napari reader: TIFF/OME-TIFF/ImageJ with pixel size and axes, weights files, and
``None`` (never an exception) for everything else."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_srcnn._reader import napari_get_reader, read_tiff


def _read(path):
    reader = napari_get_reader(str(path))
    assert callable(reader), path
    return reader(str(path))


def test_imagej_hyperstack_channels_become_layers_with_pixel_size(tmp_path):
    data = np.arange(2 * 3 * 2 * 16 * 20, dtype=np.uint16).reshape(2, 3, 2, 16, 20)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.25),
        metadata={"axes": "TZCYX", "spacing": 1.5, "unit": "micron"},
    )
    layers = _read(path)
    assert len(layers) == 2
    for c, (array, kwargs, kind) in enumerate(layers):
        assert kind == "image"
        np.testing.assert_array_equal(array, data[:, :, c])
        assert kwargs["scale"] == pytest.approx((1.0, 1.5, 0.25, 0.25))
        assert kwargs["axis_labels"] == ("t", "z", "y", "x")
        assert [str(u) for u in kwargs["units"]] == [
            "pixel",
            "micrometer",
            "micrometer",
            "micrometer",
        ]
        assert kwargs["metadata"]["axes"] == "TZYX" and kwargs["metadata"]["channel"] == c
        assert kwargs["name"] == f"hyper ch{c}" and not kwargs["rgb"]
    assert {layers[0][1]["colormap"], layers[1][1]["colormap"]} == {"green", "magenta"}


def test_ome_tiff_physical_size(tmp_path):
    data = np.zeros((5, 12, 14), np.float32)
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(
        path,
        data,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 0.1,
            "PhysicalSizeY": 0.2,
            "PhysicalSizeZ": 0.5,
            "PhysicalSizeXUnit": "µm",
        },
    )
    [(array, kwargs, _)] = _read(path)
    assert array.shape == (5, 12, 14) and array.dtype == np.float32
    assert kwargs["scale"] == pytest.approx((0.5, 0.2, 0.1))
    assert kwargs["name"] == "cells"


def test_rgb_tiff_is_one_rgb_layer(tmp_path, astronaut):
    path = tmp_path / "photo.tif"
    tifffile.imwrite(path, astronaut, photometric="rgb")
    [(array, kwargs, _)] = _read(path)
    assert kwargs["rgb"] and array.shape == astronaut.shape
    assert kwargs["scale"] == (1.0, 1.0) and "units" not in kwargs


@pytest.mark.parametrize(
    "name, content",
    [
        ("missing.tif", None),
        ("empty.tif", b""),
        ("text.tif", b"this is not a TIFF at all"),
        ("truncated.tif", b"II*\x00\x08\x00\x00\x00\xff\xff"),
        ("image.png", b"\x89PNG\r\n\x1a\n"),
        ("model.safetensors", b"garbage"),
        ("folder.tif", "dir"),
    ],
)
def test_returns_none_for_what_it_cannot_read(tmp_path, name, content):
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    assert napari_get_reader(str(path)) is None
    assert read_tiff(str(path)) is None


def test_declines_stacks_of_several_files(tmp_path, camera):
    paths = []
    for i in range(2):
        paths.append(str(tmp_path / f"p{i}.tif"))
        tifffile.imwrite(paths[-1], camera)
    assert napari_get_reader(paths) is None
    assert callable(napari_get_reader(paths[:1]))


def test_foreign_safetensors_file_is_not_claimed(tmp_path):
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        }
    ).encode()
    path = tmp_path / "other.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 4)
    assert napari_get_reader(str(path)) is None


def test_weights_file_registers_the_model(tmp_path, tiny_model_path, monkeypatch):
    import shutil

    from napari_srcnn.engine.weights import list_models
    from napari_srcnn.widgets._common import registry_events

    infos = []
    monkeypatch.setattr("napari.utils.notifications.show_info", infos.append)
    path = tmp_path / "dropped.safetensors"
    shutil.copy(tiny_model_path, path)
    seen = []
    registry_events.changed.connect(seen.append)
    try:
        assert _read(path) == [(None,)]
    finally:
        registry_events.changed.disconnect(seen.append)
    name = seen[0]
    assert any(m.name == name and m.path == path for m in list_models())
    assert name in infos[0]


def test_reader_module_does_not_import_torch():
    code = (
        "import sys, napari_srcnn._reader, napari_srcnn._sample_data, napari_srcnn._writer; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.gui
def test_viewer_opens_an_ome_tiff_with_this_plugin(make_napari_viewer, tmp_path):
    data = np.random.default_rng(0).integers(0, 4000, (2, 3, 32, 32), dtype=np.uint16)
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(
        path,
        data,
        metadata={"axes": "CZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3, "PhysicalSizeZ": 1.0},
    )
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-srcnn")
    assert [layer.name for layer in layers] == ["stack ch0", "stack ch1"]
    assert tuple(layers[0].scale) == pytest.approx((1.0, 0.3, 0.3))
    assert tuple(layers[0].axis_labels) == ("z", "y", "x")
