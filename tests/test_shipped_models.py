"""The pretrained models that ship inside the package."""

import numpy as np
import pytest

from napari_srcnn.engine.evaluation import evaluate_files, protocol_upscaler, summarize
from napari_srcnn.engine.inference import upscale
from napari_srcnn.engine.weights import default_model_name, list_models, load_model

EXPECTED = {
    "srcnn-955-y-x2",
    "srcnn-955-y-x3",
    "srcnn-955-y-x4",
    "srcnn-915-y-x3",
    "srcnn-955-rgb-x2",
    "srcnn-955-rgb-x3",
    "srcnn-955-rgb-x4",
    "srcnn-955-micro-x2",
    "srcnn-955-micro-x3",
    "srcnn-955-micro-x4",
}


def test_shipped_models_carry_their_metadata():
    models = {m.name: m for m in list_models() if m.path and "napari_srcnn" in str(m.path)}
    assert set(models) >= EXPECTED
    for m in models.values():
        assert m.arch.name in ("9-5-5", "9-1-5")
        assert m.training["recipe"] in ("adam", "paper")
        assert m.training["steps"] > 0 and m.training["wall_seconds"] > 0
        assert m.training["intensity_augment"] > 0  # trained on the whole range
        assert m.metrics["flat_max_error_255"] <= 0.5
        if m.color_mode == "per-channel":  # microscopy: scored on held-out sources, not on photos
            assert m.training["data"].startswith("microscopy")
            for degradation in ("bicubic", "area"):
                for source in m.metrics["microscopy"][degradation].values():
                    assert source["psnr"] > source["bicubic_psnr"]
            continue
        assert m.training["data"].startswith("T91 + BSD200 + BSDS500-test")
        for name in ("Set5", "Set14", "Set5+", "Set14+"):
            assert m.metrics[name]["psnr"] > m.metrics[name]["bicubic_psnr"]
    assert default_model_name(3.0) == "srcnn-955-y-x3"
    assert default_model_name(2.0) == "srcnn-955-y-x2"
    assert default_model_name(4.0) == "srcnn-955-y-x4"
    for scale in (2, 3, 4):
        name = f"srcnn-955-rgb-x{scale}"
        assert default_model_name(float(scale), "rgb") == name
        assert models[name].arch.channels == 3 and models[name].color_mode == "rgb"
        micro = f"srcnn-955-micro-x{scale}"
        assert (
            default_model_name(float(scale), "per-channel") == micro
        )  # auto's pick for non-photos
        assert models[micro].color_mode == "per-channel" and models[micro].arch.channels == 1


@pytest.fixture(scope="module")
def set5_x3(datasets):
    """Mean Set5 ×3 scores of the shipped default model, by the protocol."""
    model = load_model("srcnn-955-y-x3")
    return model, summarize(
        evaluate_files([datasets / "eval" / "Set5"], 3, protocol_upscaler(model, 3))
    )


def test_x3_model_beats_bicubic_by_2db_on_set5_and_matches_its_metadata(set5_x3):
    """Issue 4's bar for the default model, by the protocol, and the metadata it ships."""
    model, mean = set5_x3
    assert mean["psnr"] - mean["bicubic_psnr"] >= 2.0, mean
    assert mean["psnr"] == pytest.approx(model.info.metrics["Set5"]["psnr"], abs=0.01)
    assert mean["ssim"] == pytest.approx(model.info.metrics["Set5"]["ssim"], abs=1e-4)


def test_eval_ensemble_reproduces_the_srcnn_plus_row(datasets, capsys):
    """`napari-srcnn eval Set5 --scale 3 --ensemble` prints what the metadata's "Set5+" says."""
    import json

    from napari_srcnn.cli import main

    argv = ["eval", str(datasets / "eval" / "Set5"), "--scale", "3", "--ensemble", "--json"]
    assert main([*argv, "--model", "srcnn-955-y-x3"]) == 0
    report = json.loads(capsys.readouterr().out)
    plus = load_model("srcnn-955-y-x3").info.metrics["Set5+"]
    assert report["ensemble"] and report["mean"]["psnr"] == pytest.approx(plus["psnr"], abs=0.01)
    assert report["mean"]["psnr"] > load_model("srcnn-955-y-x3").info.metrics["Set5"]["psnr"]


def test_rgb_x3_model_beats_bicubic_on_set5(datasets):
    """The RGB model takes R, G, B and is scored on the Y of its result (the paper's colour
    experiment); the metadata holds what it scores."""
    model = load_model("srcnn-955-rgb-x3")
    upscaler = protocol_upscaler(model, 3)
    assert upscaler.options.channels == "rgb"
    mean = summarize(evaluate_files([datasets / "eval" / "Set5"], 3, upscaler))
    assert mean["psnr"] - mean["bicubic_psnr"] >= 1.0, mean
    assert mean["psnr"] == pytest.approx(model.info.metrics["Set5"]["psnr"], abs=0.01)


def test_rgb_mode_uses_the_shipped_rgb_model_on_the_bundled_photo():
    """`--channels rgb` needs no model argument: the shipped 3-channel model for the scale
    runs, and beats bicubic on the bundled photo sample (not an evaluation image)."""
    import numpy as np

    from napari_srcnn.engine.evaluation import compare_to_reference
    from napari_srcnn.engine.inference import Upscaler
    from napari_srcnn.engine.io import read_image
    from napari_srcnn.engine.options import UpscaleOptions
    from napari_srcnn.samples import sample_path

    lr, _ = read_image(sample_path("photo-lr"))
    hr, _ = read_image(sample_path("photo-hr"))
    upscaler = Upscaler(options=UpscaleOptions(scale=3.0, channels="rgb"))
    assert upscaler.model.name == "srcnn-955-rgb-x3"
    sr = upscaler(lr)
    assert sr.shape == hr.shape and sr.dtype == np.uint8
    scores = compare_to_reference(lr, sr, hr, 3.0)
    assert scores["psnr"] > scores["bicubic_psnr"] + 1.0, scores


def _shipped():
    return sorted(m.name for m in list_models() if m.path and "napari_srcnn" in str(m.path))


# Flat images at levels spread over the whole range, black and white included.
_LEVELS = np.linspace(0.0, 1.0, 21)


@pytest.mark.parametrize("name", _shipped())
def test_every_shipped_model_keeps_a_flat_image_flat_at_every_level(name):
    """A flat image at any level in [0, 1] comes back as the same flat image within 0.5/255:
    black stays black, white stays white (uint8, uint16, 12-bit data in uint16, float).

    Run in fp32 with the dtype's own map (``normalization="dtype"``), which puts each level where
    the dtype says, and with the default map (the data's own range)."""
    model = load_model(name)
    info = model.info
    scale = info.scale
    rgb = info.arch.channels == 3
    shape = (24, 24, 3) if rgb else (24, 24)
    worst = 0.0
    for level in _LEVELS:
        for dtype, top in ((np.uint8, 255), (np.uint16, 65535), (np.uint16, 4095), (np.float32, 1)):
            value = level * top
            image = np.full(shape, value, dtype=np.float64)
            image = image.astype(dtype) if dtype is np.float32 else np.rint(image).astype(dtype)
            for normalization in ("dtype", "auto"):
                # The tolerance is 0.5/255 of the range the map spans: the dtype's, or for the
                # default map the data's own (12-bit data: 4095).
                span = top if normalization == "auto" else (np.iinfo(dtype).max if top > 1 else 1)
                out = upscale(
                    image, model, scale, precision="fp32", normalization=normalization
                ).astype(np.float64)
                err = float(np.abs(out - image.astype(np.float64)[0, 0]).max()) / span
                worst = max(worst, err)
                assert err <= 0.5 / 255 + 1e-9, (
                    name,
                    level,
                    np.dtype(dtype).name,
                    top,
                    normalization,
                )
    assert worst <= 0.5 / 255
