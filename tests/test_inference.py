import numpy as np
import pytest
import torch

from napari_srcnn.engine.inference import Upscaler, upscale
from napari_srcnn.engine.metrics import psnr
from napari_srcnn.engine.model import SRCNN, ArchSpec
from napari_srcnn.engine.model_info import ModelInfo
from napari_srcnn.engine.options import UpscaleOptions
from napari_srcnn.engine.resize import imresize
from napari_srcnn.engine.weights import load_model
from napari_srcnn.engine.weights_file import LoadedModel
from napari_srcnn.errors import CancelledError, DeviceError, InputError


@pytest.fixture(scope="module")
def model955():
    """A 9-5-5 net with random (non-trivial) weights: tiling must be exact for any weights."""
    torch.manual_seed(0)
    net = SRCNN(ArchSpec.parse("9-5-5"))
    return LoadedModel(net, ModelInfo(name="r955", arch=net.spec, scale=3.0))


@pytest.fixture(scope="module")
def rgb_model():
    torch.manual_seed(1)
    net = SRCNN(ArchSpec.parse("9-1-5", channels=3))
    return LoadedModel(net, ModelInfo(name="rgb", arch=net.spec, scale=2.0, color_mode="rgb"))


@pytest.mark.parametrize("scale", [2, 3, 2.5])
@pytest.mark.parametrize("tile", [16, 37, 64])
def test_tiled_equals_untiled(model955, camera, scale, tile):
    image = camera[:70, :53].astype(np.float32) / 255
    whole = upscale(image, model955, scale, tile=4096)
    tiled = upscale(image, model955, scale, tile=tile)
    assert whole.shape == (np.ceil(70 * scale), np.ceil(53 * scale))
    assert np.abs(whole - tiled).max() <= 1e-5


def test_untiled_equals_network_on_padded_bicubic(model955, camera):
    """The engine is exactly: MATLAB bicubic, replicate padding by the halo, the network."""
    image = camera[:40, :40].astype(np.float64) / 255
    out = upscale(image, model955, 3, tile=4096, normalization="dtype")
    bic = torch.from_numpy(imresize(image, 3.0)).float()[None, None]
    ref = model955.net.body(torch.nn.functional.pad(bic, (8,) * 4, mode="replicate"))[0, 0]
    np.testing.assert_allclose(out, ref.detach().numpy(), atol=1e-5)


@pytest.mark.parametrize(
    "dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64, np.float16]
)
def test_dtype_round_trip(tiny_model_path, camera, dtype):
    if np.dtype(dtype).kind == "f":
        image = (camera[:24, :24] / 255).astype(dtype)
    else:
        info = np.iinfo(dtype)
        image = (camera[:24, :24].astype(np.float64) / 255 * info.max).astype(dtype)
    out = upscale(image, str(tiny_model_path), 2)
    assert out.dtype == image.dtype and out.shape == (48, 48)
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        assert out.min() >= info.min and out.max() <= info.max
        assert abs(float(out.mean()) - float(image.mean())) < 0.2 * (
            float(image.max()) - float(image.min()) + 1
        )


def test_float_data_keeps_its_range(tiny_model_path, camera):
    """Float data outside [0, 1] is normalised by min/max and mapped back, not clipped."""
    image = camera[:40, :40].astype(np.float32) * 10 + 500  # 500..3050
    out = upscale(image, str(tiny_model_path), 2)
    assert out.dtype == np.float32
    assert 400 < out.mean() < 3100
    ref = imresize(image.astype(np.float64), 2.0)
    assert abs(out.mean() - ref.mean()) < 0.05 * ref.std()


def test_nd_stack_is_processed_plane_by_plane(model955, camera):
    stack = np.stack([camera[:20, :30], camera[20:40, :30], camera[40:60, :30]]).reshape(
        3, 1, 20, 30
    )
    stack = np.concatenate([stack, stack[::-1]], axis=1)  # (z=3, c=2, y, x)
    out = upscale(stack, model955, 2, normalization="dtype")
    assert out.shape == (3, 2, 40, 60) and out.dtype == np.uint8
    single = upscale(stack[1, 0], model955, 2, normalization="dtype")
    np.testing.assert_array_equal(out[1, 0], single)
    np.testing.assert_array_equal(out[0, 1], out[2, 0])


def test_channel_axis_last_is_not_upsampled(model955, camera):
    image = np.stack(
        [
            camera[:20, :20],
            camera[20:40, :20],
            camera[40:60, :20],
            camera[60:80, :20],
            camera[:20, 20:40],
        ],
        -1,
    )
    out = upscale(image, model955, 2, channel_axis=-1)
    assert out.shape == (40, 40, 5)
    np.testing.assert_array_equal(out[..., 2], upscale(image[..., 2], model955, 2))


def test_rgb_y_mode_runs_network_on_luma_only(model955, astronaut):
    out = upscale(astronaut, model955, 2)
    assert out.shape == (192, 160, 3) and out.dtype == np.uint8
    per = upscale(astronaut, model955, 2, channels="per-channel")
    assert per.shape == out.shape and not np.array_equal(per, out)


def test_rgb_mode_and_rgba(rgb_model, astronaut):
    out = upscale(astronaut, rgb_model, 2, channels="rgb")
    assert out.shape == (192, 160, 3)
    rgba = np.concatenate([astronaut, np.full(astronaut.shape[:2] + (1,), 200, np.uint8)], -1)
    out4 = upscale(rgba, rgb_model, 2)
    np.testing.assert_array_equal(out4[..., :3], out)
    assert (out4[..., 3] == 200).all()  # alpha: bicubic of a constant


def test_shipped_model_beats_bicubic_on_a_real_image():
    """The default ×3 model must improve on bicubic on an image it never saw."""
    from skimage import data

    hr = data.astronaut()[100:280, 100:280, 1].astype(np.float64)
    lr = imresize(hr, 1 / 3)
    bic = np.clip(imresize(lr, 3.0), 0, 255)
    lr8 = np.clip(np.round(lr), 0, 255).astype(np.uint8)
    sr = upscale(lr8, None, 3).astype(np.float64)
    assert psnr(sr, hr, shave=3) > psnr(bic, hr, shave=3) + 0.3


def test_progress_and_cancel(model955, camera):
    calls = []
    upscale(camera[:40, :40], model955, 2, tile=32, progress=lambda d, t: calls.append((d, t)))
    assert (
        calls
        == [(1, 9), (2, 9), (3, 9), (4, 9), (5, 9), (6, 9), (7, 9), (8, 9), (9, 9)][: len(calls)]
    )
    assert calls[-1] == (len(calls), len(calls))
    count = iter(range(100))
    with pytest.raises(CancelledError):
        upscale(camera[:40, :40], model955, 2, tile=32, cancel=lambda: next(count) >= 2)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 5), np.uint8), "empty"),
        (np.zeros(5, np.uint8), "at least 2"),
        (np.zeros((4, 4), bool), "dtype"),
        (np.zeros((4, 4), complex), "dtype"),
        (np.zeros((1, 1), np.uint8), "too small"),
        (np.zeros((2,) * 7, np.uint8), "dimensions"),
    ],
)
def test_bad_images(model955, image, message):
    with pytest.raises(InputError, match=message):
        upscale(image, model955, 2)


def test_nan_pixels_do_not_poison_the_output(model955, camera):
    image = camera[:30, :30].astype(np.float32) / 255
    image[5, 5] = np.nan
    out = upscale(image, model955, 2)
    assert np.isfinite(out).sum() >= out.size - 4 * 17 * 17  # NaN stays local at most


def test_rgb_model_rejects_grayscale(rgb_model, camera):
    with pytest.raises(InputError, match="RGB model"):
        upscale(camera[:20, :20], rgb_model, 2)


def test_device_choice():
    with pytest.raises(DeviceError):
        UpscaleOptions(device="tpu") and Upscaler(None, UpscaleOptions(scale=2, device="tpu"))
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            Upscaler(None, UpscaleOptions(scale=2, device="cuda"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(model955, camera):
    cpu = upscale(camera[:64, :64].astype(np.float32) / 255, model955, 2, device="cpu")
    gpu = upscale(
        camera[:64, :64].astype(np.float32) / 255,
        load_model(model955),
        2,
        device="cuda",
        precision="fp32",
    )
    np.testing.assert_allclose(cpu, gpu, atol=1e-4)


# ------------------------------------------------------------------ the runner in the Upscaler
# (NetworkRunner on its own: tests/test_runner.py)


def _random_model(arch: str, channels: int = 1, seed: int = 0) -> LoadedModel:
    torch.manual_seed(seed)
    net = SRCNN(ArchSpec.parse(arch, channels=channels))
    mode = "rgb" if channels == 3 else "y"
    return LoadedModel(
        net.eval(), ModelInfo(name=f"r{arch}", arch=net.spec, scale=2.0, color_mode=mode)
    )


def test_y_mode_equals_the_ycbcr_recipe(model955, astronaut):
    """Y mode = network on MATLAB's Y of the bicubic image, Cb/Cr bicubic, back to RGB."""
    from napari_srcnn.engine.color import rgb_to_ycbcr, ycbcr_to_rgb

    rgb = astronaut[:40, :36].astype(np.float64) / 255
    out = upscale(rgb, model955, 2, tile=4096, normalization="dtype")
    ycc = rgb_to_ycbcr(imresize(rgb.transpose(2, 0, 1), 2.0), channel_axis=0)
    y = torch.from_numpy(ycc[:1]).float()[None]
    with torch.no_grad():
        sr = model955.net.body(torch.nn.functional.pad(y, (8,) * 4, mode="replicate"))[0].clamp(
            0, 1
        )
    ref = ycbcr_to_rgb(np.concatenate([sr.numpy().astype(np.float64), ycc[1:]]), channel_axis=0)
    np.testing.assert_allclose(out, np.clip(ref, 0, 1).transpose(1, 2, 0), atol=2e-5)


def test_upscaler_pickles_to_the_same_result(model955, camera):
    """What dask.distributed does with it: weights and options travel, the model is rebuilt."""
    import pickle
    import warnings

    from napari_srcnn.errors import ScaleMismatchWarning

    with pytest.warns(ScaleMismatchWarning):  # a ×3 model used at ×2: said once, here
        up = Upscaler(model955, UpscaleOptions(scale=2, tile=32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clone = pickle.loads(pickle.dumps(up))  # as on every dask worker: not said again
    assert not [w for w in caught if issubclass(w.category, ScaleMismatchWarning)]
    assert clone is not up and clone.options == up.options
    image = camera[:40, :40]
    np.testing.assert_array_equal(clone(image), up(image))


def test_precision_option_change_rebuilds_the_runner(model955):
    up = Upscaler(model955, UpscaleOptions(scale=2))
    first = up.runner
    assert first.precision == "fp32" and up.runner is first
    from dataclasses import replace

    up.options = replace(up.options, precision="bf16")
    assert up.runner is not first and up.runner.precision == "bf16"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_is_close_to_fp32_and_tiles_grow_with_free_memory(camera):
    loaded = _random_model("9-5-5")
    image = camera.astype(np.float32) / 255
    ref = upscale(image, loaded, 2, device="cpu")
    up = Upscaler(_random_model("9-5-5"), UpscaleOptions(scale=2, device="cuda"))
    out = up(image)
    assert up.runner.precision == "bf16" and up.runner.block >= 32
    assert up.tile_edge() >= 512
    np.testing.assert_allclose(out, ref, atol=3e-2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tiny_blocks_still_match(camera):
    """A block forced small (as after out-of-memory halvings) gives the same image."""
    image = camera[:96, :96].astype(np.float32) / 255
    up = Upscaler(_random_model("9-1-5"), UpscaleOptions(scale=2, device="cuda", precision="fp32"))
    whole = up(image)
    up.runner.block = 32
    np.testing.assert_allclose(up(image), whole, atol=1e-5)


def test_cpu_cells_run_side_by_side_and_equal_the_serial_run(model955, astronaut):
    """With two torch threads each tile is computed in cells on the block threads (bicubic,
    network, colour and dtype all there, one torch thread each); the result is the serial
    run's and torch's thread count is restored."""
    import threading

    image = astronaut.astype(np.float32) / 255  # 96×80 RGB, Y mode, ×3 -> 288×240
    serial = Upscaler(model955, UpscaleOptions(scale=3, tile=128))
    serial.runner.parallel_blocks = False
    ref = serial(image)
    parallel = Upscaler(model955, UpscaleOptions(scale=3, tile=128))
    seen = []
    cell = parallel._cell

    def spy(plane, origin, plan, box, norm=None, strength=1.0):
        seen.append((threading.get_ident(), torch.get_num_threads(), box))
        return cell(plane, origin, plan, box, norm, strength)

    parallel._cell = spy
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = parallel(image)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert {n for _, n, _ in seen} == {1} and len({t for t, _, _ in seen}) == 2
    assert threading.get_ident() not in {t for t, _, _ in seen}
    # 3 × 2 equal tiles of 96×120 are 6 cells: an even share for two threads.
    boxes = sorted(box for _, _, box in seen)
    assert len(boxes) == 6 and {(b[1] - b[0], b[3] - b[2]) for b in boxes} == {(96, 120)}


def test_tiles_are_equal(model955):
    up = Upscaler(model955, UpscaleOptions(scale=3, tile=512))
    tiles = up._tiles(0, 600, 0, 1100)
    assert len(tiles) == 2 * 3
    assert {(t[1] - t[0], t[3] - t[2]) for t in tiles} <= {(300, 366), (300, 367)}


def test_rgb_option_says_whether_the_last_axis_is_colour(model955, camera):
    """A stack 3 pixels wide is RGB by napari's guess; rgb=False makes its last two axes
    Y and X, rgb=True insists on colour."""
    stack = camera[:60, :3].reshape(4, 15, 3).astype(np.float32) / 255
    assert upscale(stack, model955, 2).shape == (8, 30, 3)  # guessed: one RGB image
    planes = upscale(stack, model955, 2, rgb=False, normalization="dtype")
    assert planes.shape == (4, 30, 6)
    one = upscale(stack[1], model955, 2, normalization="dtype")
    np.testing.assert_allclose(planes[1], one, atol=1e-6)
    assert upscale(stack, model955, 2, rgb=True).shape == (8, 30, 3)
    with pytest.raises(InputError, match="rgb=True needs a last axis of 3"):
        upscale(camera[:20, :20], model955, 2, rgb=True)
    with pytest.raises(InputError, match="and rgb not False"):
        upscale(stack, model955, 2, channels="y", rgb=False)
    per_channel = upscale(stack, model955, 2, channels="per-channel", rgb=False)
    assert per_channel.shape == (4, 30, 6)
    with pytest.raises(InputError, match="must be True, False or None"):
        UpscaleOptions(rgb="yes")


def test_fewer_cells_than_threads_run_the_network_blocks_side_by_side(model955, camera):
    """A small image on a machine with more threads than cells: the tile is computed here,
    and the network's blocks run on the block threads instead (no thread left idle)."""
    import threading

    image = camera[:40, :40].astype(np.float32) / 255  # ×3 -> one 120² tile
    # A fixed strength: a measured one would run cells of the image's binned copy too.
    serial = Upscaler(model955, UpscaleOptions(scale=3, strength=1.0))
    serial.runner.parallel_blocks = False
    ref = serial(image)
    up = Upscaler(model955, UpscaleOptions(scale=3, strength=1.0))
    up.runner.block = 32  # 4 × 4 network blocks
    cell_threads, block_threads = [], []
    cell, forward = up._cell, up.runner._forward_cpu

    def spy_cell(*args):
        cell_threads.append(threading.get_ident())
        return cell(*args)

    def spy_forward(x):
        block_threads.append(threading.get_ident())
        return forward(x)

    up._cell, up.runner._forward_cpu = spy_cell, spy_forward
    threads = torch.get_num_threads()
    torch.set_num_threads(8)  # 1 tile, at most 2 × 2 cells: fewer than 8
    try:
        out = up(image)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert cell_threads == [threading.get_ident()]
    assert len(block_threads) == 16 and threading.get_ident() not in block_threads


def test_without_a_model_photos_get_the_photo_model_and_the_rest_the_microscopy_one(
    camera, astronaut
):
    """``channels="auto"`` and no model: RGB photographs run the Y photo model, grayscale and
    multichannel data the shipped microscopy model (colour mode gray), and ``model.name``
    of ``for_image()`` says which ran."""
    up = Upscaler(None, UpscaleOptions(scale=2))
    assert up.for_image(astronaut.shape).model.name == "srcnn-955-y-x2"
    assert up.for_image(camera.shape).model.name == "srcnn-955-micro-x2"
    assert up.for_image((2, 40, 40)).model.name == "srcnn-955-micro-x2"
    auto = up(camera[:32, :32])
    np.testing.assert_array_equal(auto, upscale(camera[:32, :32], "srcnn-955-micro-x2", 2))
    assert not np.array_equal(auto, upscale(camera[:32, :32], "srcnn-955-y-x2", 2))
    named = Upscaler("srcnn-955-y-x2", UpscaleOptions(scale=2))
    assert named.for_image(camera.shape) is named  # a named model is never swapped
    per_channel = Upscaler(None, UpscaleOptions(scale=2, channels="per-channel"))
    assert per_channel.model.name == "srcnn-955-micro-x2"


@pytest.mark.parametrize("scale", [2, 3, 2.5])
def test_nan_is_missing_data_and_stays_where_it_lands(model955, camera, scale):
    """NaN pixels come back as NaN exactly where they land after up-sampling (the LR pixel that
    holds each output pixel's centre), finite everywhere else, in every tile and chunk."""
    import dask.array as da

    image = camera[:40, :44].astype(np.float32) / 255 * 1000  # float, not in [0, 1]
    image[10:14, 20:23] = np.nan
    image[0, 0] = np.nan
    out = upscale(image, model955, scale, tile=32)
    rows = np.minimum(np.floor((np.arange(out.shape[0]) + 0.5) / scale).astype(int), 39)
    cols = np.minimum(np.floor((np.arange(out.shape[1]) + 0.5) / scale).astype(int), 43)
    expected = np.isnan(image)[np.ix_(rows, cols)]
    np.testing.assert_array_equal(np.isnan(out), expected)
    assert np.isfinite(out[~expected]).all()
    whole = upscale(image, model955, scale, tile=4096)
    np.testing.assert_array_equal(out, whole)  # NaN compares equal to NaN here
    lazy = upscale(da.from_array(image, chunks=(20, 22)), model955, scale).compute()
    np.testing.assert_array_equal(lazy, whole)
    # Far from the hole the result is what it is without the hole.
    filled = image.copy()
    filled[np.isnan(filled)] = np.nanmin(image)
    ref = upscale(filled, model955, scale)
    far = np.ones_like(expected)
    far[: int(18 * scale), int(16 * scale) :] = False  # the hole and its receptive field
    far[: int(4 * scale), : int(4 * scale)] = False
    np.testing.assert_allclose(out[far], ref[far], rtol=1e-5, atol=1e-2)


def test_an_all_nan_plane_stays_all_nan_and_colour_marks_every_sample(model955, astronaut):
    stack = np.stack([np.full((20, 24), np.nan, np.float32), np.ones((20, 24), np.float32)])
    out = upscale(stack, model955, 2)
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    rgb = astronaut[:20, :20].astype(np.float32) / 255
    rgb[5, 5, 1] = np.nan  # one sample of one pixel
    out = upscale(rgb, model955, 2)
    assert np.isnan(out[10:12, 10:12]).all() and np.isnan(out).sum() == 4 * 3


def test_self_ensemble_is_the_mean_of_the_eight_flips_and_rotations(model955, camera):
    import dask.array as da

    image = camera[:30, :41].astype(np.float32) / 255
    plus = upscale(image, model955, 3, ensemble=True, normalization="none")
    runs = []
    for k in range(8):
        turned = np.rot90(np.fliplr(image) if k >= 4 else image, k % 4)
        out = np.rot90(
            upscale(np.ascontiguousarray(turned), model955, 3, normalization="none"), -(k % 4)
        )
        runs.append(np.fliplr(out) if k >= 4 else out)
    np.testing.assert_allclose(plus, np.mean(runs, axis=0), atol=1e-6)
    assert not np.allclose(plus, runs[0], atol=1e-4)  # the flips do differ
    as_uint8 = upscale(camera[:30, :41], model955, 3, ensemble=True)
    assert as_uint8.dtype == np.uint8 and as_uint8.shape == (90, 123)
    seen = []
    upscale(image, model955, 3, ensemble=True, tile=32, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] and len(seen) == seen[-1][1]
    with pytest.raises(InputError, match="in memory"):
        upscale(da.from_array(image), model955, 3, ensemble=True)
    with pytest.raises(InputError, match="True or False"):
        UpscaleOptions(ensemble="yes")
