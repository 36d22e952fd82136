"""The model registry: shipped and registered names, list_models, default_model_name,
load_model and its scale check."""

import pytest
import torch

from napari_srcnn.engine import weights as W
from napari_srcnn.engine.model import SRCNN, ArchSpec
from napari_srcnn.engine.model_info import ModelInfo
from napari_srcnn.engine.weights import load_model, register_model
from napari_srcnn.engine.weights_file import save_weights
from napari_srcnn.errors import ScaleMismatchWarning, SRCNNWarning, WeightsError


def _net(spec=None, seed=0):
    torch.manual_seed(seed)
    return SRCNN(spec or ArchSpec.parse("9-1-5"))


def test_missing_paths_and_folders(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")
    with pytest.raises(WeightsError, match="folder"):
        load_model(tmp_path)
    with pytest.raises(WeightsError, match="no model named"):
        load_model("no-such-model")


def test_registry_registers_and_picks_the_nearest_scale(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "_REGISTERED", {})
    monkeypatch.setattr(W, "_shipped", lambda: {})
    with pytest.raises(WeightsError, match="no 'y' model"):
        W.default_model_name(3.0)
    for scale in (2.0, 4.0):
        net = _net()
        save_weights(
            tmp_path / f"s{scale:g}.safetensors",
            net,
            ModelInfo(name=f"s{scale:g}", arch=net.spec, scale=scale),
        )
        register_model(tmp_path / f"s{scale:g}.safetensors")
    names = [m.name for m in W.list_models()]
    assert names == ["s2", "s4"]
    assert W.default_model_name(2.4) == "s2"
    assert W.default_model_name(3.6) == "s4"
    assert W.default_model_name(3.0, "per-channel") == "s2"  # per-channel falls back to Y models
    assert load_model("s4").info.scale == 4.0
    assert W.unregister_model("s4") and not W.unregister_model("s4")
    assert [m.name for m in W.list_models()] == ["s2"]
    assert W.default_model_name(3.6) == "s2"


def test_scale_mismatch_warns_once_and_matching_scale_is_silent(tmp_path, recwarn):
    net = _net()
    path = save_weights(
        tmp_path / "x3.safetensors", net, ModelInfo(name="x3", arch=net.spec, scale=3.0)
    )
    load_model(path, scale=3.0)
    load_model(path)
    assert not [w for w in recwarn if issubclass(w.category, SRCNNWarning)]
    with pytest.warns(ScaleMismatchWarning, match=r"trained for ×3 and is used at ×2\.5"):
        loaded = load_model(path, scale=2.5)
    with pytest.warns(ScaleMismatchWarning):
        load_model(loaded, scale=4.0)  # an already loaded model is checked the same way


def test_list_models_skips_unreadable_files_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "_shipped", lambda: {})
    net = _net()
    good = save_weights(
        tmp_path / "good.safetensors", net, ModelInfo(name="good", arch=net.spec, scale=2.0)
    )
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"junk")
    monkeypatch.setattr(
        W, "_REGISTERED", {"good": good, "bad": bad, "gone": tmp_path / "gone.safetensors"}
    )
    with pytest.warns(SRCNNWarning, match="left out") as record:
        names = [m.name for m in W.list_models()]
    assert names == ["good"] and len(record) == 2
