"""ModelInfo: the header metadata of a weights file, and how a hostile header is refused."""

import json

import pytest
import torch
from safetensors.torch import save_file

from napari_srcnn.engine import weights as W
from napari_srcnn.engine.model import SRCNN, ArchSpec
from napari_srcnn.engine.model_info import ModelInfo
from napari_srcnn.engine.weights import load_model
from napari_srcnn.errors import WeightsError


def _net(spec=None, seed=0):
    torch.manual_seed(seed)
    return SRCNN(spec or ArchSpec.parse("9-1-5"))


def test_metadata_is_plain_json_strings(tmp_path):
    net = _net()
    meta = ModelInfo(name="m", arch=net.spec, scale=2.5).to_metadata()
    assert all(isinstance(v, str) for v in meta.values())
    assert json.loads(meta["arch"])["f2"] == 1
    with pytest.raises(WeightsError):
        ModelInfo(name="m", arch=ArchSpec(channels=3), scale=3.0, color_mode="y")


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (
            {
                "arch": '{"f1": 9, "f2": 5, "f3": 5, "n1": 64, "n2": 32, "channels": 1, "extra_layers": 1e16}'
            },
            "implausible architecture",
        ),
        ({"arch": '{"f1": 1e400}'}, "corrupt napari-srcnn metadata"),
        ({"arch": "[" * 100000}, "corrupt napari-srcnn metadata"),
        ({"arch": '"9-5-5"'}, "not a JSON object"),
        ({"metrics": "[1, 2]"}, "must be JSON objects"),
        ({"scale": "inf"}, "positive finite"),
        ({"scale": "nan"}, "positive finite"),
        ({"color_mode": "cmyk"}, "colour mode"),
        ({"format_version": "two"}, "corrupt napari-srcnn metadata"),
        ({"format_version": "-5"}, "weights format -5 is not a valid version"),
        ({"format_version": "0"}, "weights format 0 is not a valid version"),
    ],
)
def test_hostile_metadata_is_a_one_line_weights_error(tmp_path, meta, message):
    net = _net()
    base = ModelInfo(name="m", arch=net.spec, scale=3.0).to_metadata()
    path = tmp_path / "m.safetensors"
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()},
        str(path),
        metadata={**base, **meta},
    )
    with pytest.raises(WeightsError, match=message) as info:
        W.read_info(path)
    assert "\n" not in str(info.value)
    with pytest.raises(WeightsError):
        load_model(path)


def test_names_from_a_header_are_printable(tmp_path):
    """Row 13 of issue 15: a name or description with terminal escapes, a newline or a
    bidirectional override is shown with ``?`` in their place, on one line."""
    net = _net()
    base = ModelInfo(name="m", arch=net.spec, scale=3.0).to_metadata()
    path = tmp_path / "m.safetensors"
    hostile = {"name": "a\x1b[2Jb\nc\u202ed", "description": "x\ry" + "z" * 500}
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()},
        str(path),
        metadata={**base, **hostile},
    )
    info = W.read_info(path)
    assert info.name == "a?[2Jb?c?d"
    assert info.description.startswith("x?yzz") and len(info.description) == 200
    assert W.load_model(path).name == "a?[2Jb?c?d"


def test_files_that_say_gray_load_as_per_channel(tmp_path):
    """Weights written before the per-channel mode had one name record ``"gray"``: they load as
    ``"per-channel"``, and are written back with the one word."""
    net = _net()
    meta = ModelInfo(name="m", arch=net.spec, scale=2.0, color_mode="per-channel").to_metadata()
    assert meta["color_mode"] == "per-channel"
    path = tmp_path / "old.safetensors"
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()},
        str(path),
        metadata={**meta, "color_mode": "gray"},
    )
    assert load_model(path).info.color_mode == "per-channel"
    with pytest.raises(WeightsError, match="colour mode"):
        ModelInfo(name="m", arch=net.spec, scale=2.0, color_mode="gray")
