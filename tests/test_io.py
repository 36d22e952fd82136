import numpy as np
import pytest
import tifffile

from napari_srcnn.engine.io import ImageMeta, read_image, write_image
from napari_srcnn.errors import InputError


def test_2d_tiff_round_trip_keeps_pixel_size(tmp_path, camera):
    meta = ImageMeta(axes="YX", spacing=(0.25, 0.2), unit="µm")
    path = write_image(tmp_path / "a.tif", camera, meta)
    data, got = read_image(path)
    np.testing.assert_array_equal(data, camera)
    assert got.axes == "YX" and got.unit == "µm"
    assert got.spacing == pytest.approx((0.25, 0.2), rel=1e-6)


def test_hyperstack_axes_and_upscaled_meta(tmp_path):
    stack = np.random.default_rng(0).integers(0, 4000, (3, 2, 16, 20), dtype=np.uint16)
    meta = ImageMeta(axes="ZCYX", spacing=(1.5, None, 0.3, 0.3), unit="µm")
    path = write_image(tmp_path / "s.tif", stack, meta)
    data, got = read_image(path)
    np.testing.assert_array_equal(data, stack)
    assert got.axes == "ZCYX" and got.channel_axis == 1
    assert got.spacing[0] == pytest.approx(1.5) and got.spacing[2] == pytest.approx(0.3)
    up = got.upscaled(3)
    assert up.spacing[2] == pytest.approx(0.1) and up.spacing[0] == pytest.approx(1.5)


def test_float64_and_rgb_tiffs(tmp_path, astronaut):
    x = np.random.default_rng(1).random((2, 8, 9))
    path = write_image(tmp_path / "f.tif", x, ImageMeta(axes="TYX", spacing=(None, 2.0, 2.0)))
    data, got = read_image(path)
    assert data.dtype == np.float64 and got.axes == "TYX"
    np.testing.assert_array_equal(data, x)
    path = write_image(tmp_path / "rgb.tif", astronaut, ImageMeta(axes="YXS"))
    data, got = read_image(path)
    assert got.rgb and got.spatial_axes == (0, 1)
    np.testing.assert_array_equal(data, astronaut)


def test_ome_tiff_physical_size(tmp_path):
    x = np.zeros((4, 10, 12), np.uint16)
    path = tmp_path / "o.ome.tif"
    tifffile.imwrite(path, x, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65, "PhysicalSizeZ": 2.0})
    data, meta = read_image(path)
    assert data.shape == (4, 10, 12) and meta.axes == "ZYX"
    assert meta.spacing == pytest.approx((2.0, 0.65, 0.65))


def test_png_jpeg(tmp_path, astronaut, camera):
    write_image(tmp_path / "a.png", astronaut)
    data, meta = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(data, astronaut)
    assert meta.axes == "YXS"
    write_image(tmp_path / "c.jpg", camera)
    data, meta = read_image(tmp_path / "c.jpg")
    assert data.shape == camera.shape and meta.axes == "YX"
    with pytest.raises(InputError, match="cannot store float"):
        write_image(tmp_path / "f.png", camera.astype(np.float32))
    with pytest.raises(InputError, match="to .tif"):
        write_image(tmp_path / "s.png", np.zeros((2, 5, 5), np.uint8))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("empty.tif", b"", "empty file"), ("junk.tif", b"II*\x00garbage" * 3, "cannot read"),
     ("junk.png", b"\x89PNG\r\n\x1a\nnope", "cannot read"), ("x.gif", b"GIF89a", "unsupported")],
)
def test_bad_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_image(path)


def test_truncated_tiff_missing_and_folder(tmp_path, camera):
    path = write_image(tmp_path / "t.tif", np.tile(camera, (4, 4)))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(InputError):
        read_image(path)
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "missing.tif")
    with pytest.raises(InputError, match="folder"):
        read_image(tmp_path)
