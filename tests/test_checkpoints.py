"""The training checkpoint format: a damaged or hostile checkpoint is one clear error, never a
crash, a half-restored run or a run that trains on nonsense."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from napari_srcnn.engine.checkpoints import read_checkpoint_state
from napari_srcnn.engine.data import training_data_from_arrays
from napari_srcnn.engine.model import ArchSpec
from napari_srcnn.engine.train_config import TrainConfig
from napari_srcnn.engine.training import train
from napari_srcnn.errors import InputError, WeightsError


def test_checkpoint_with_a_corrupt_progress_record_is_a_clear_error(tmp_path):
    """A checkpoint of the right kind whose JSON state is damaged: one clear WeightsError."""
    path = tmp_path / "bad.ckpt.safetensors"
    save_file(
        {"x": torch.zeros(1)},
        str(path),
        metadata={"kind": "napari-srcnn-checkpoint", "state": "{not json"},
    )
    with pytest.raises(WeightsError, match="corrupt"):
        read_checkpoint_state(path)


@pytest.fixture(scope="module")
def data(camera):
    planes = [camera[y : y + 64, x : x + 64] for y in (0, 64) for x in (0, 64)]
    return training_data_from_arrays(planes, 2.0, "per-channel", patch_size=21, val_fraction=0.25)


def _config(output, steps, **kwargs):
    return TrainConfig(
        output=output,
        scale=2.0,
        arch=ArchSpec.parse("3-1-3:8,4"),
        steps=steps,
        batch_size=4,
        patch_size=21,
        val_every=2,
        checkpoint_every=2,
        device="cpu",
        **kwargs,
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, data):
    """A real checkpoint at step 4 (Adam), and one of the paper recipe (SGD)."""
    folder = tmp_path_factory.mktemp("ckpt")
    train(data, _config(folder / "a.safetensors", 4))
    train(data, _config(folder / "p.safetensors", 4, recipe="paper"))
    return folder


def _parts(path):
    with safe_open(str(path), framework="pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata())  # noqa: SIM118


def _state(**changes):
    def change(tensors, meta):
        state = json.loads(meta["state"])
        state.update(changes)
        meta["state"] = json.dumps(state)

    return change


def _meta(key, value):
    def change(tensors, meta):
        meta[key] = value

    return change


def _groups(**changes):
    def change(tensors, meta):
        groups = json.loads(meta["groups"])
        groups[0].update(changes)
        meta["groups"] = json.dumps(groups)

    return change


def _tensors(edit):
    def change(tensors, meta):
        edit(tensors)

    return change


def _rename(old, new):
    return _tensors(lambda t: t.__setitem__(new, t.pop(old)))


def _set(key, value):
    return _tensors(lambda t: t.__setitem__(key, value(t[key])))


CORRUPTIONS = {
    "step-a-string": (_state(step="abc"), "is not a non-negative integer"),
    "step-a-fraction": (_state(step=5.5), "is not a non-negative integer"),
    "step-negative": (_state(step=-100), "is not a non-negative integer"),
    "step-a-bool": (_state(step=True), "is not a non-negative integer"),
    "state-a-list": (_meta("state", "[]"), "not a JSON object"),
    "history-a-number": (_state(history=5), "history"),
    "seconds-negative": (_state(seconds=-1.0), "seconds"),
    "best-psnr-a-string": (_state(best_psnr="high"), "best_psnr"),
    "groups-not-a-list": (_meta("groups", "{}"), "optimiser groups"),
    "groups-missing": (_meta("groups", "[]"), "optimiser groups"),
    "group-lr-a-string": (_groups(lr="fast"), "optimiser setting 'lr'"),
    "group-unknown-setting": (_groups(warp=9), "optimiser setting 'warp'"),
    "group-betas-above-one": (_groups(betas=[2.0, 0.9]), "betas"),
    "group-eps-zero": (_groups(eps=0.0), "optimiser setting 'eps' is 0.0"),
    "optimiser-tensor-float64": (_set("optim.1.exp_avg", lambda v: v.double()), "float64"),
    "config-a-list": (_meta("config", "[1]"), "settings record"),
    "optimiser-key-unknown": (_rename("optim.0.exp_avg", "optim.0.bogus"), "unexpected"),
    "optimiser-parameter-out-of-range": (
        _rename("optim.0.exp_avg", "optim.99.exp_avg"),
        "unexpected",
    ),
    "optimiser-tensor-missing": (_tensors(lambda t: t.pop("optim.0.exp_avg_sq")), "incomplete"),
    "optimiser-shape-wrong": (
        _set("optim.0.exp_avg", lambda v: torch.zeros(3, 1, 1, 1)),
        "expected",
    ),
    "optimiser-tensor-nan": (_set("optim.1.exp_avg", lambda v: v.fill_(float("nan"))), "finite"),
    "optimiser-step-negative": (_set("optim.0.step", lambda v: -v), "negative"),
    "optimiser-state-missing-at-step-4": (
        _tensors(lambda t: [t.pop(k) for k in [k for k in t if k.startswith("optim.")]]),
        "no optimiser state",
    ),
    "rng-wrong-size": (_set("rng", lambda v: v[:100]), "random-generator state"),
    "rng-wrong-dtype": (_set("rng", lambda v: v.float()), "random-generator state"),
    "network-tensor-nan": (_set("model.body.0.weight", lambda v: v.fill_(float("nan"))), "finite"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_damaged_checkpoint_is_one_weights_error_and_writes_nothing(
    case, checkpoint, data, tmp_path
):
    change, message = CORRUPTIONS[case]
    tensors, meta = _parts(checkpoint / "a.ckpt.safetensors")
    change(tensors, meta)
    meta.pop("sha256")  # as a checkpoint of before the checksum: each field is checked
    bad = tmp_path / "bad.ckpt.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(bad), metadata=meta)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(WeightsError, match="is corrupt") as info:
        train(data, _config(out / "b.safetensors", 10), resume=bad)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not list(out.iterdir()), "a refused resume wrote files"


@pytest.mark.parametrize("where", ["network", "optimiser", "generator", "metadata"])
def test_a_flipped_bit_is_caught_by_the_checksum(where, checkpoint, data, tmp_path):
    """Valid floats, valid shapes, valid JSON: only the checksum can tell (byte flips in the
    tensor data used to resume silently)."""
    tensors, meta = _parts(checkpoint / "a.ckpt.safetensors")
    if where == "metadata":
        meta["world"] = "2"
    else:
        key = {"network": "model.body.0.weight", "optimiser": "optim.0.exp_avg", "generator": "rng"}
        flat = tensors[key[where]].reshape(-1).view(torch.uint8)
        flat[3] ^= 0x10
    bad = tmp_path / "bad.ckpt.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(bad), metadata=meta)
    with pytest.raises(WeightsError, match="do not match their checksum"):
        train(data, _config(tmp_path / "b.safetensors", 10), resume=bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ckpt.safetensors"]


def test_the_paper_recipe_checkpoint_is_checked_too(checkpoint, data, tmp_path):
    tensors, meta = _parts(checkpoint / "p.ckpt.safetensors")
    meta.pop("sha256")
    key = next(k for k in tensors if k.endswith("momentum_buffer"))
    tensors[key] = torch.zeros(2, 2)
    bad = tmp_path / "bad.ckpt.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(bad), metadata=meta)
    with pytest.raises(WeightsError, match="momentum_buffer is"):
        train(data, _config(tmp_path / "b.safetensors", 10, recipe="paper"), resume=bad)
    # and the intact one resumes
    result = train(
        data,
        _config(tmp_path / "c.safetensors", 6, recipe="paper"),
        resume=checkpoint / "p.ckpt.safetensors",
    )
    assert result.steps == 6 and (tmp_path / "c.safetensors").is_file()


def test_resuming_at_or_past_the_last_step_is_refused(checkpoint, data, tmp_path):
    for steps in (4, 3):
        with pytest.raises(InputError, match="is at step 4 already"):
            train(
                data,
                _config(tmp_path / "b.safetensors", steps),
                resume=checkpoint / "a.ckpt.safetensors",
            )
    assert not list(tmp_path.iterdir())


def test_resuming_into_a_new_output_writes_it(checkpoint, data, tmp_path):
    """The best weights of the first run are in its own output: the new one gets the best of
    the resumed steps, and is always written."""
    out = tmp_path / "b.safetensors"
    result = train(data, _config(out, 6), resume=checkpoint / "a.ckpt.safetensors")
    assert out.is_file() and result.output == out
    assert read_checkpoint_state(tmp_path / "b.ckpt.safetensors")["output"] == str(out.resolve())
    assert np.isfinite(result.best_psnr)
