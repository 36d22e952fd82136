"""Scoring scientific images: any dtype, stacks and channels, over each channel's data range."""

import numpy as np
import pytest
import tifffile

from napari_srcnn.cli import main
from napari_srcnn.engine.inference import Upscaler
from napari_srcnn.engine.io import ImageMeta
from napari_srcnn.engine.model import SRCNN, ArchSpec, init_identity
from napari_srcnn.engine.model_info import ModelInfo
from napari_srcnn.engine.options import UpscaleOptions
from napari_srcnn.engine.scoring import score_image, shrink
from napari_srcnn.engine.weights_file import LoadedModel
from napari_srcnn.errors import InputError


@pytest.fixture(scope="module")
def identity():
    """A 9-5-5 that returns its bicubic input: its score must be bicubic's."""
    net = init_identity(SRCNN(ArchSpec.parse("9-5-5")), scale=0.0)
    return LoadedModel(net.eval(), ModelInfo(name="identity", arch=net.spec, scale=2.0))


def test_area_shrink_is_the_block_mean():
    plane = np.arange(36, dtype=np.float64).reshape(6, 6)
    small = shrink(plane, 3, "area")
    assert small.shape == (2, 2) and small[0, 0] == pytest.approx(plane[:3, :3].mean())


def test_a_dim_two_channel_stack_is_scored_per_channel_over_its_own_range(identity, camera):
    bright = camera[:64, :64].astype(np.uint16) * 200
    dim = (camera[64:128, :64].astype(np.uint16) // 4 + 98).astype(np.uint16)  # 98..161
    stack = np.stack([bright, dim])  # (C, Y, X)
    up = Upscaler(identity, UpscaleOptions(scale=2))
    for degradation in ("bicubic", "area"):
        row = score_image(stack, 2, up, ImageMeta(axes="CYX"), degradation)
        assert row["planes"] == 2 and row["model"] == "identity"
        # The identity network is bicubic; only the uint16 rounding of its output differs.
        assert row["psnr"] == pytest.approx(row["bicubic_psnr"], abs=0.05)
        assert 20 < row["bicubic_psnr"] < 60 and 0 < row["ssim"] <= 1


def test_bad_inputs_are_one_input_error(identity):
    up = Upscaler(identity, UpscaleOptions(scale=2))
    with pytest.raises(InputError, match="integer factor"):
        score_image(np.zeros((64, 64), np.uint16), 2.5, up)
    with pytest.raises(InputError, match="too small"):
        score_image(np.zeros((6, 6), np.uint16), 2, up)
    with pytest.raises(InputError, match="NaN"):
        score_image(np.full((64, 64), np.nan, np.float32), 2, up)
    with pytest.raises(InputError, match="degradation"):
        score_image(np.ones((64, 64), np.float32), 2, up, degradation="jpeg")


def test_eval_cli_scores_a_16_bit_stack_over_its_data_range(tmp_path, camera, capsys):
    stack = np.stack([camera[:64, :64], camera[64:, :64]]).astype(np.uint16) * 16  # 12-bit
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "ZYX"})
    assert main(["eval", str(path), "--scale", "2", "--bicubic"]) == 0
    out = capsys.readouterr().out
    assert "data range" in out and "stack.tif" in out
    assert main(["eval", str(path), "--scale", "2", "--degradation", "area", "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["scoring"] == "data-range" and report["images"][0]["planes"] == 2
    assert np.isfinite(report["mean"]["psnr"])
    assert main(["eval", str(path), "--scale", "2", "--scoring", "protocol"]) == 2
    assert "8-bit" in capsys.readouterr().err


def test_eval_ensemble_is_reported_as_srcnn_plus(tmp_path, camera, capsys):
    from napari_srcnn.engine.io import write_image

    write_image(tmp_path / "hr.png", camera[:60, :60])
    assert main(["eval", str(tmp_path / "hr.png"), "--scale", "2", "--ensemble"]) == 0
    out = capsys.readouterr().out
    assert "SRCNN+ PSNR" in out and "+ (self-ensemble)" in out


def test_compare_to_reference_refuses_a_reference_of_another_size(camera):
    """A reference smaller than the result (a crop, or the LR image itself) is one clear error,
    not a score of the result's corner; one a rounding away from the result's size is fine."""
    from napari_srcnn.engine.evaluation import compare_to_reference
    from napari_srcnn.engine.resize import imresize
    from napari_srcnn.errors import InputError

    hr = camera[:96, :96].astype(np.float64)
    lr = imresize(hr, 1 / 3)
    sr = imresize(lr, 3.0)
    scores = compare_to_reference(lr, sr, hr, 3.0)
    assert scores["psnr"] == pytest.approx(scores["bicubic_psnr"])  # sr is bicubic here
    for bad in (hr[:48, :48], hr[:, :60], lr):
        with pytest.raises(InputError, match="is not ×3 the input"):
            compare_to_reference(lr, sr, bad, 3.0)
    compare_to_reference(lr, sr, camera[:98, :97].astype(np.float64), 3.0)  # within the factor
