"""Through a real viewer: napari's Save Layers with our writer, then File > Open with our
reader, gives the same pixels with the same pixel size (the reader/writer round trip)."""

from __future__ import annotations

import numpy as np


def test_saved_layer_reopens_with_its_pixel_size(make_napari_viewer, tmp_path, camera):
    viewer = make_napari_viewer()
    data = np.stack([camera[:64, :80], camera[64:128, :80]]).astype(np.uint16) * 40
    viewer.add_image(data, name="stack", scale=(1.5, 0.2, 0.25), units="µm")
    path = tmp_path / "stack.ome.tif"
    written = viewer.layers.save(str(path), plugin="napari-srcnn")
    assert written == [str(path)] and path.exists()

    # napari offers its own reader too (the user picks one): choose ours as that dialog would.
    [layer] = viewer.open(str(path), plugin="napari-srcnn")
    np.testing.assert_array_equal(layer.data, data)
    assert layer.data.dtype == np.uint16
    np.testing.assert_allclose(layer.scale, (1.5, 0.2, 0.25), rtol=1e-6)
    assert {str(u) for u in layer.units} == {"micrometer"}
    assert tuple(layer.axis_labels) == ("z", "y", "x")


def test_writer_is_offered_for_ome_tiff_first():
    """napari's save dialog proposes the first extension: the one our reader claims."""
    from npe2 import PluginManager

    manifest = PluginManager.instance().get_manifest("napari-srcnn")
    [writer] = manifest.contributions.writers
    assert writer.filename_extensions[0] == ".ome.tif"
    readers = manifest.contributions.readers
    assert any("*.ome.tif" in r.filename_patterns for r in readers)
