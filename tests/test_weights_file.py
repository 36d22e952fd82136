"""Reading and writing weights files: round trips, atomic saves, corrupt, hostile and
legacy files."""

import pickle

import pytest
import torch
from safetensors.torch import save_file

from napari_srcnn.engine import weights_file as W
from napari_srcnn.engine.model import SRCNN, ArchSpec
from napari_srcnn.engine.model_info import ModelInfo
from napari_srcnn.engine.weights import load_model
from napari_srcnn.engine.weights_file import read_info, save_weights
from napari_srcnn.errors import WeightsError, WriteError


def _net(spec=None, seed=0):
    torch.manual_seed(seed)
    return SRCNN(spec or ArchSpec.parse("9-1-5"))


def test_round_trip_keeps_tensors_and_metadata(tmp_path):
    net = _net()
    info = ModelInfo(
        name="m",
        arch=net.spec,
        scale=3.0,
        color_mode="y",
        description="d",
        training={"recipe": "adam", "steps": 10},
        metrics={"Set5": {"psnr": 32.5}},
    )
    path = save_weights(tmp_path / "m.safetensors", net, info)
    loaded = load_model(path)
    for (k, a), (k2, b) in zip(
        net.state_dict().items(), loaded.net.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b)
    got = read_info(path)
    assert got.arch == net.spec and got.scale == 3.0 and got.color_mode == "y"
    assert got.training == {"recipe": "adam", "steps": 10}
    assert got.metrics["Set5"]["psnr"] == 32.5
    assert not loaded.net.training


def test_save_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    net = _net()
    info = ModelInfo(name="m", arch=net.spec, scale=2.0)
    path = save_weights(tmp_path / "m.safetensors", net, info)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(W, "save_file", boom)
    with pytest.raises(WriteError, match="disk full"):
        save_weights(path, _net(seed=1), info)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"not a safetensors file at all", "not a valid"),
        (b"\x02" + b"\x00" * 7 + b"{}", "not a napari-srcnn"),
    ],
)
def test_garbage_files_are_weights_errors(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        load_model(path)


def test_truncated_file_is_a_weights_error(tmp_path):
    net = _net()
    path = save_weights(
        tmp_path / "m.safetensors", net, ModelInfo(name="m", arch=net.spec, scale=3.0)
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError):
        load_model(path)


def test_wrong_shapes_for_the_declared_architecture(tmp_path):
    net = _net(ArchSpec.parse("9-5-5"))
    meta = ModelInfo(name="m", arch=ArchSpec.parse("9-1-5"), scale=3.0).to_metadata()
    path = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata=meta)
    with pytest.raises(WeightsError, match="do not fit architecture 9-1-5"):
        load_model(path)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_malicious_pickle_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"conv1.weight": _Evil()}, fh)
    with pytest.raises(WeightsError, match="refused"):
        load_model(path, scale=3)
    assert not (tmp_path / "PWNED").exists()


def test_legacy_plain_state_dict_loads_with_weights_only(tmp_path):
    net = _net(ArchSpec.parse("9-5-5"))
    convs = net.convs()
    legacy = {
        f"conv{i + 1}.{kind}": getattr(c, kind).detach().clone()
        for i, c in enumerate(convs)
        for kind in ("weight", "bias")
    }
    path = tmp_path / "srcnn_x3.pth"
    torch.save(legacy, path)
    with pytest.raises(WeightsError, match="give the scale"):
        load_model(path)
    loaded = load_model(path, scale=3)
    assert loaded.info.arch == ArchSpec.parse("9-5-5")
    x = torch.rand(1, 1, 20, 20)
    torch.testing.assert_close(loaded.net(x), net(x))


def test_the_malicious_pickle_is_live_but_load_model_never_runs_it(tmp_path):
    """The same file runs its payload under plain pickle (so the test proves something)
    and is refused, without running it, by load_model (torch.load(weights_only=True))."""
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "model.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": Payload()}, path)
    with pytest.raises(WeightsError, match="refused to load .* nothing in it was executed"):
        load_model(path, scale=3)
    assert not marker.exists()
    with open(tmp_path / "plain.pkl", "wb") as fh:
        pickle.dump(Payload(), fh)
    with open(tmp_path / "plain.pkl", "rb") as fh:
        pickle.load(fh)  # what an unsafe loader would do
    assert marker.exists()


def test_torch_load_is_only_ever_called_with_weights_only(tmp_path, monkeypatch):
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    net = _net()
    legacy = {
        f"conv{i + 1}.{k}": getattr(c, k).detach().clone()
        for i, c in enumerate(net.convs())
        for k in ("weight", "bias")
    }
    torch.save(legacy, tmp_path / "a.pt")
    load_model(tmp_path / "a.pt", scale=2)
    with pytest.raises(WeightsError):
        (tmp_path / "b.pth").write_bytes(b"garbage")
        load_model(tmp_path / "b.pth", scale=2)
    assert calls == [True, True]


def test_extra_or_missing_tensors_and_non_float_dtypes(tmp_path):
    net = _net()
    meta = ModelInfo(name="m", arch=net.spec, scale=3.0).to_metadata()
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    cases = {
        "extra": ({**state, "body.99.weight": torch.zeros(1)}, "unexpected body.99.weight"),
        "missing": ({k: v for k, v in state.items() if k != "body.2.bias"}, "missing body.2.bias"),
        "half": ({k: v.half() for k, v in state.items()}, None),
        "int": ({k: v.to(torch.int64) for k, v in state.items()}, "not floating point"),
    }
    for name, (tensors, message) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path), metadata=meta)
        if message is None:
            assert load_model(path).net.body[0].weight.dtype == torch.float32
        else:
            with pytest.raises(WeightsError, match=message):
                load_model(path)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (  # torch 2.13
            "Weights only load failed. In PyTorch 2.6, we changed the default value of the "
            "`weights_only` argument in `torch.load` from `False` to `True`. Re-running "
            "`torch.load` with `weights_only` set to `False` will likely succeed, but it can "
            "result in arbitrary code execution.\n\n\nTrying to load unsupported GLOBAL "
            "posix.system whose module posix is blocked.\n\nCheck the documentation",
            "it asks for posix.system, which a weights file never needs",
        ),
        (  # torch 2.6 to 2.12
            "Weights only load failed. ... \x1b[1mdo those steps only if you trust\x1b[0m\n\t"
            "WeightsUnpickler error: Unsupported global: GLOBAL builtins.eval was not an "
            "allowed global by default.",
            "it asks for builtins.eval, which a weights file never needs",
        ),
        (  # a protocol-0 pickle of os.system: the unpickler stops at an instruction
            "Weights only load failed. In PyTorch 2.6, we changed ... Please file an issue with "
            "the following so that we can make `weights_only=True` compatible with your use "
            "case: WeightsUnpickler error: \n\nUnsupported operand 100\n\nCheck the docs",
            "Unsupported operand 100, which a weights file never needs",
        ),
        (
            "Weights only load failed. In PyTorch 2.6, we changed the default ... Re-running "
            "`torch.load` with `weights_only` set to `False` will likely succeed",
            "RuntimeError",
        ),
    ],
)
def test_the_refusal_names_what_the_pickle_asked_for(text, reason):
    """Row 8 of issue 15: the reason survives PyTorch's changing wording, without its advice."""
    from napari_srcnn.engine.weights_file import _legacy_reason

    got = _legacy_reason(RuntimeError(text))
    assert got == reason and "weights_only" not in got and "\n" not in got


def test_weights_far_beyond_any_srcnn_are_refused(tmp_path):
    from napari_srcnn.engine.weights_file import MAX_ABS_WEIGHT

    net = SRCNN(ArchSpec.parse("3-1-3:8,4"))
    path = save_weights(tmp_path / "ok.safetensors", net, ModelInfo("ok", net.spec, 2.0))
    assert load_model(path).net is not None
    with torch.no_grad():
        net.body[0].bias.fill_(MAX_ABS_WEIGHT * 10)
    path = save_weights(tmp_path / "big.safetensors", net, ModelInfo("big", net.spec, 2.0))
    with pytest.raises(WeightsError, match="implausibly large"):
        load_model(path)
