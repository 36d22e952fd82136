import numpy as np
import pytest
import tifffile

from napari_srcnn.engine.io import ImageMeta, check_writable, read_header, read_image, write_image
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
    tifffile.imwrite(
        path,
        x,
        ome=True,
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 0.65,
            "PhysicalSizeY": 0.65,
            "PhysicalSizeZ": 2.0,
        },
    )
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
    [
        ("empty.tif", b"", "empty file"),
        ("junk.tif", b"II*\x00garbage" * 3, "cannot read"),
        ("junk.png", b"\x89PNG\r\n\x1a\nnope", "cannot read"),
        ("x.gif", b"GIF89a", "unsupported"),
    ],
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


def test_gray_alpha_png_is_two_channels_not_colour(tmp_path, camera):
    la = np.stack([camera[:10, :12], np.full((10, 12), 200, np.uint8)], -1)
    path = write_image(tmp_path / "la.png", la)
    data, meta = read_image(path)
    np.testing.assert_array_equal(data, la)
    assert meta.axes == "YXC" and meta.channel_axis == 2 and not meta.rgb
    assert meta.spatial_axes == (0, 1)


def test_tiff_extra_samples_that_are_not_rgb_become_a_channel_axis(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (10, 12, 2), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "s.tif", x, photometric="minisblack", planarconfig="contig")
    data, meta = read_image(tmp_path / "s.tif")
    assert "S" not in meta.axes and data.shape[meta.spatial_axes[0]] == 10
    assert data.shape[meta.spatial_axes[1]] == 12


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("rgb16.png", np.zeros((4, 4, 3), np.uint16), "16-bit PNG holds grayscale only"),
        ("rgba.bmp", np.zeros((4, 4, 4), np.uint8), "cannot store 4 channels"),
        ("la.jpg", np.zeros((4, 4, 2), np.uint8), "cannot store 2 channels"),
        ("obj.tif", np.zeros((4, 4), object), "cannot store object"),
        ("five.png", np.zeros((4, 4, 5), np.uint8), "to .tif instead"),
    ],
)
def test_write_refuses_what_the_format_would_silently_lose(tmp_path, name, data, message):
    with pytest.raises(InputError, match=message):
        write_image(tmp_path / name, data)
    assert list(tmp_path.iterdir()) == []


def test_write_meta_must_match_the_array(tmp_path):
    with pytest.raises(InputError, match="do not match"):
        write_image(tmp_path / "a.tif", np.zeros((4, 4), np.uint8), ImageMeta(axes="ZYX"))


def test_one_dimensional_tiff_and_memory_ceiling(tmp_path, monkeypatch):
    from napari_srcnn.engine import io as image_io

    tifffile.imwrite(tmp_path / "line.tif", np.arange(10, dtype=np.uint8))
    with pytest.raises(InputError, match="1-D array"):
        read_image(tmp_path / "line.tif")
    write_image(tmp_path / "big.tif", np.zeros((64, 64), np.uint16))
    write_image(tmp_path / "big.png", np.zeros((64, 64), np.uint8))
    monkeypatch.setattr(image_io, "max_image_bytes", lambda: 1000)
    for name in ("big.tif", "big.png"):
        with pytest.raises(InputError, match="of memory available"):
            read_image(tmp_path / name)
        with pytest.raises(InputError, match="of memory available"):
            read_header(tmp_path / name)  # the header alone says it
    monkeypatch.undo()
    monkeypatch.setenv("NAPARI_SRCNN_MEMORY_LIMIT", "4KiB")
    with pytest.raises(InputError, match=r"more than the 4 KiB of memory allowed by NAPARI_SRCNN"):
        read_image(tmp_path / "big.tif")  # 8 KiB of uint16


def test_read_header_says_what_read_image_returns_without_the_pixels(tmp_path, camera, astronaut):
    cases = {
        "gray.tif": (camera, {}),
        "stack.tif": (
            np.stack([camera] * 3).astype(np.uint16),
            {"imagej": True, "metadata": {"axes": "ZYX"}},
        ),
        "cyx.tif": (np.zeros((2, 10, 12), np.float32), {"metadata": {"axes": "CYX"}}),
        "yxc.tif": (np.zeros((10, 12, 2), np.uint8), {"metadata": {"axes": "YXC"}}),
        "rgb.tif": (astronaut, {"photometric": "rgb"}),
    }
    for name, (array, kwargs) in cases.items():
        tifffile.imwrite(tmp_path / name, array, **kwargs)
    write_image(tmp_path / "rgb.png", astronaut)
    write_image(tmp_path / "la.png", np.stack([camera, camera], -1))
    for path in sorted(tmp_path.iterdir()):
        data, meta = read_image(path)
        header = read_header(path)
        assert (header.shape, header.dtype, header.meta.axes) == (data.shape, data.dtype, meta.axes)
        assert header.nbytes == data.nbytes


def test_several_series_and_odd_colour_spaces_are_refused(tmp_path, camera, astronaut):
    with tifffile.TiffWriter(tmp_path / "three.tif") as tw:
        for k in range(3):
            tw.write(camera + k)
    tifffile.imwrite(
        tmp_path / "cmyk.tif", np.dstack([astronaut, astronaut[..., :1]]), photometric="separated"
    )
    tifffile.imwrite(tmp_path / "lab.tif", astronaut, photometric="cielab")
    for name, message in (
        ("three.tif", "holds 3 images"),
        ("cmyk.tif", "CMYK"),
        ("lab.tif", "L\\*a\\*b"),
    ):
        for reader in (read_image, read_header):
            with pytest.raises(InputError, match=message):
                reader(tmp_path / name)


def test_paths_of_the_wrong_type_are_input_errors(tmp_path):
    for reader in (read_image, read_header):
        with pytest.raises(InputError, match="is not a file path"):
            reader(5)
    with pytest.raises(InputError, match="is not a file path"):
        write_image(None, np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="cannot make an image array to write"):
        write_image(tmp_path / "r.tif", [[1, 2], [3]])  # a ragged list


def test_check_writable_refuses_before_the_work(tmp_path):
    assert check_writable(tmp_path / "a.png", (8, 8), np.uint8) == ".png"
    with pytest.raises(InputError, match="cannot store float32"):
        check_writable(tmp_path / "a.png", (8, 8), np.float32)
    with pytest.raises(InputError, match="unsupported output type"):
        check_writable(tmp_path / "a.gif", (8, 8), np.uint8)


def test_unreadable_paths_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_image(tmp_path / ("x" * 300 + ".tif"))
    with pytest.raises(InputError):
        read_image(str(tmp_path / "nul\0.tif"))


def test_a_white_is_zero_tiff_is_written_back_white_is_zero(tmp_path, camera):
    """A MINISWHITE TIFF read and written back keeps its look (it used to come back inverted)."""
    tifffile.imwrite(tmp_path / "mw.tif", camera, photometric="miniswhite")
    data, meta = read_image(tmp_path / "mw.tif")
    assert meta.white_is_zero and read_header(tmp_path / "mw.tif").meta.white_is_zero
    for name in ("out.tif", "out.ome.tif"):
        write_image(tmp_path / name, data, meta.upscaled(2))
        with tifffile.TiffFile(tmp_path / name) as tif:
            assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.MINISWHITE
        assert read_image(tmp_path / name)[1].white_is_zero


def test_a_cmyk_jpeg_is_refused(tmp_path, astronaut):
    from PIL import Image

    Image.fromarray(astronaut).convert("CMYK").save(tmp_path / "c.jpg")
    for reader in (read_image, read_header):
        with pytest.raises(InputError, match="is a CMYK image"):
            reader(tmp_path / "c.jpg")


@pytest.mark.parametrize("order", [b"II", b"MM"])
def test_a_tiff_whose_directories_loop_is_refused_at_once(tmp_path, order):
    """Two image directories pointing at each other (found by the reader fuzz test: tifffile
    reads them forever): a one-line InputError from read_image and read_header, and the
    napari reader declines the file."""
    import struct

    from napari_srcnn._reader import napari_get_reader

    fmt = "<" if order == b"II" else ">"
    data = order + struct.pack(fmt + "HI", 42, 8)
    data += struct.pack(fmt + "HI", 0, 14) + struct.pack(fmt + "HI", 0, 8)  # IFD 8 <-> IFD 14
    path = tmp_path / "loop.tif"
    path.write_bytes(data)
    for read in (read_image, read_header):
        with pytest.raises(InputError, match="form a loop"):
            read(path)
    assert napari_get_reader(str(path)) is None
