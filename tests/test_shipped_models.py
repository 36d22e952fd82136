"""The pretrained models that ship inside the package."""

import pytest

from napari_srcnn.engine.evaluation import evaluate_files, protocol_upscaler, summarize
from napari_srcnn.engine.weights import default_model_name, list_models, load_model

EXPECTED = {
    "srcnn-955-y-x2",
    "srcnn-955-y-x3",
    "srcnn-955-y-x4",
    "srcnn-915-y-x3",
    "srcnn-955-rgb-x2",
    "srcnn-955-rgb-x3",
    "srcnn-955-rgb-x4",
}


def test_shipped_models_carry_their_metadata():
    models = {m.name: m for m in list_models() if m.path and "napari_srcnn" in str(m.path)}
    assert set(models) >= EXPECTED
    for m in models.values():
        assert m.arch.name in ("9-5-5", "9-1-5")
        assert m.training["recipe"] in ("adam", "paper")
        assert m.training["steps"] > 0 and m.training["wall_seconds"] > 0
        assert "SunHays80" in m.training["data"] or "Sun" in m.description
        for name in ("Set5", "Set14"):
            assert m.metrics[name]["psnr"] > m.metrics[name]["bicubic_psnr"]
    assert default_model_name(3.0) == "srcnn-955-y-x3"
    assert default_model_name(2.0) == "srcnn-955-y-x2"
    assert default_model_name(4.0) == "srcnn-955-y-x4"
    for scale in (2, 3, 4):
        name = f"srcnn-955-rgb-x{scale}"
        assert default_model_name(float(scale), "rgb") == name
        assert models[name].arch.channels == 3 and models[name].color_mode == "rgb"


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
    from napari_srcnn.engine.inference import UpscaleOptions, Upscaler
    from napari_srcnn.engine.io import read_image
    from napari_srcnn.samples import sample_path

    lr, _ = read_image(sample_path("photo-lr"))
    hr, _ = read_image(sample_path("photo-hr"))
    upscaler = Upscaler(options=UpscaleOptions(scale=3.0, channels="rgb"))
    assert upscaler.model.name == "srcnn-955-rgb-x3"
    sr = upscaler(lr)
    assert sr.shape == hr.shape and sr.dtype == np.uint8
    scores = compare_to_reference(lr, sr, hr, 3.0)
    assert scores["psnr"] > scores["bicubic_psnr"] + 1.0, scores
