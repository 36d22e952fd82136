"""The trainer: events, best weights, cancel, checkpoints and resume."""

import math
import os

import numpy as np
import pytest
import torch

from napari_srcnn.engine.checkpoints import read_checkpoint_state
from napari_srcnn.engine.data import training_data_from_arrays
from napari_srcnn.engine.device import mps_available
from napari_srcnn.engine.evaluation import check_flat, flat_error_255
from napari_srcnn.engine.inference import upscale
from napari_srcnn.engine.model import SRCNN, ArchSpec, init_identity
from napari_srcnn.engine.model_info import ModelInfo
from napari_srcnn.engine.resize import imresize
from napari_srcnn.engine.train_config import (
    StepEvent,
    TrainConfig,
    ValidationEvent,
    steps_for_epochs,
)
from napari_srcnn.engine.training import train, validate
from napari_srcnn.engine.weights import load_model
from napari_srcnn.engine.weights_file import save_weights
from napari_srcnn.errors import InputError, WeightsError

TINY = ArchSpec.parse("3-1-3:8,4")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One compute thread: two OpenMP threads on two busy cores spin and run far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiles(camera):
    """Four 64×64 planes of a real photo as a uint16 stack (one is held out)."""
    return (
        np.stack([camera[y : y + 64, x : x + 64] for y in (0, 64) for x in (0, 64)]).astype(
            np.uint16
        )
        * 257
    )


@pytest.fixture(scope="module")
def tdata(tiles):
    return training_data_from_arrays(
        [tiles], 2, "per-channel", patch_size=21, val_fraction=0.25, seed=0
    )


def config(tmp_path, name="m", **kw):
    base = dict(
        output=tmp_path / f"{name}.safetensors",
        scale=2.0,
        arch=TINY,
        steps=12,
        batch_size=8,
        patch_size=21,
        lr=3e-3,
        val_every=4,
        checkpoint_every=4,
        val_crop=64,
        device="cpu",
    )
    return TrainConfig(**{**base, **kw})


def weights(path):
    return {k: v.clone() for k, v in load_model(path).net.state_dict().items()}


def test_paper_recipe_trains_with_sgd_momentum(tmp_path, tdata):
    events = []
    result = train(
        tdata,
        config(tmp_path, recipe="paper", lr=None, steps=8, grid_stride=14),
        on_event=events.append,
    )
    assert result.steps == 8 and math.isfinite(result.best_psnr)
    info = load_model(result.output).info
    assert info.training["recipe"] == "paper" and info.training["grid_stride"] == 14
    lrs = [e.lr for e in events if isinstance(e, StepEvent)]
    assert lrs == [1e-4] * 8  # constant learning rate, first layers at 1e-4


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"recipe": "sgd"}, "recipe"),
        ({"init": "zeros"}, "init"),
        ({"steps": 0}, "steps"),
        ({"lr": -1.0}, "learning rate"),
        ({"patch_size": 4}, "leaves no output"),
        ({"scale": 1.0}, "scale"),
        ({"grid_stride": 0}, "grid"),
        ({"output": "x.pt"}, "must end in .safetensors"),
        ({"batch_size": 2.5}, "batch-size"),
        ({"loss": "huber"}, "loss"),
        ({"loss": "l1", "recipe": "paper"}, "paper recipe"),
        ({"ema": 1.0}, "EMA decay"),
        ({"ema": -0.1}, "EMA decay"),
    ],
)
def test_bad_config_is_an_input_error(tmp_path, kw, message):
    with pytest.raises(InputError, match=message):
        config(tmp_path, **kw)


def test_steps_for_epochs(tdata):
    grid = tdata.grid_size(21)  # three 64×64 planes: 4×4 sub-images each
    assert grid == 3 * 16
    assert steps_for_epochs(tdata, 2, 8, 21, world=1) == 12
    assert steps_for_epochs(tdata, 2, 8, 21, world=2) == 6
    assert steps_for_epochs(tdata, 0.01, 8, 21, world=1) == 1
    with pytest.raises(InputError, match="epochs"):
        steps_for_epochs(tdata, 0, 8, 21)


# ------------------------------------------------------------------ a run


def test_train_events_best_weights_and_metadata(tmp_path, tdata, tiles):
    events = []
    rng_before = torch.random.get_rng_state()
    result = train(tdata, config(tmp_path), on_event=events.append)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's RNG is left alone
    steps = [e for e in events if isinstance(e, StepEvent)]
    vals = [e for e in events if isinstance(e, ValidationEvent)]
    assert [e.step for e in steps] == list(range(1, 13)) and all(e.total == 12 for e in steps)
    assert [e.step for e in vals] == [0, 4, 8, 12]
    assert all(math.isfinite(e.loss) and e.loss > 0 for e in steps)
    assert all(v.bicubic_psnr == vals[0].bicubic_psnr for v in vals)
    assert result.start_psnr == vals[0].psnr and result.bicubic_psnr == vals[0].bicubic_psnr
    best = max(v.psnr for v in vals)
    assert result.best_psnr == best == vals[-1].best_psnr
    assert [h["step"] for h in result.history] == [0, 4, 8, 12]
    # The written weights are the best ones: validating them again gives the best PSNR.
    loaded = load_model(result.output)
    assert validate(loaded.net, tdata, 64)[0] == pytest.approx(best, abs=1e-4)
    info = loaded.info
    assert info.scale == 2.0 and info.color_mode == "per-channel" and info.normalization == "auto"
    assert info.metrics["validation"]["psnr"] == pytest.approx(best)
    assert info.training["train_planes"] == 3 and info.training["val_planes"] == 1
    assert info.training["seed"] == 0 and info.training["augment"] is True
    # what ran it: CPU model, core count and the torch threads (1 in this module)
    assert info.training["hardware"].endswith(", 1 torch thread")
    assert f"{os.cpu_count()} CPUs" in info.training["hardware"]
    assert info.training["wall_seconds"] >= 0 and info.training["device"] == "cpu"
    # The weights run in `upscale` on the same kind of data (uint16 in, uint16 out).
    out = upscale(tiles[0, :32, :32], str(result.output), 2)
    assert out.shape == (64, 64) and out.dtype == np.uint16


@pytest.mark.parametrize(("init", "at_bicubic"), [("identity", True), ("pytorch", False)])
def test_scratch_start_identity_scores_bicubic_at_step_0(tmp_path, tdata, init, at_bicubic):
    """Adam's default start is the identity: step 0 already scores bicubic, and a few steps
    only add to it; PyTorch's default init starts far below."""
    cfg = config(tmp_path, init=init, arch=ArchSpec.parse("5-1-3:8,4"), lr=1e-3)
    assert cfg.start == init and config(tmp_path).start == "identity"
    result = train(tdata, cfg)
    assert (abs(result.start_psnr - result.bicubic_psnr) < 1e-6) == at_bicubic
    if at_bicubic:
        assert result.best_psnr >= result.bicubic_psnr
    else:
        assert result.start_psnr < result.bicubic_psnr - 5
    assert load_model(result.output).info.training["config"]["init"] == init


def test_validate_scores_bicubic_like_the_protocol(tdata):
    """An identity network scores exactly bicubic; bicubic is scored with the shave."""
    net = SRCNN(ArchSpec(f1=1, f2=1, f3=1, n1=1, n2=1))
    with torch.no_grad():
        for conv in net.convs():
            conv.weight.fill_(1.0)
            conv.bias.zero_()
    psnr, bicubic = validate(net, tdata, crop=64)
    assert psnr == pytest.approx(bicubic, abs=1e-9)
    pair = tdata.val[0]
    err = (np.clip(pair.lr_up, 0, 1) - pair.hr)[:, 2:-2, 2:-2].astype(np.float64)
    assert bicubic == pytest.approx(10 * np.log10(1 / np.mean(err**2)), abs=1e-6)


def test_same_seed_same_result(tmp_path, tdata):
    a = train(tdata, config(tmp_path, "a", steps=6, val_every=6))
    b = train(tdata, config(tmp_path, "b", steps=6, val_every=6))
    assert a.best_psnr == b.best_psnr
    wa, wb = weights(a.output), weights(b.output)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = train(tdata, config(tmp_path, "c", steps=6, val_every=6, seed=1))
    assert not torch.equal(weights(c.output)["body.0.weight"], wa["body.0.weight"])


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"recipe": "paper", "lr": 1e-3, "grid_stride": 14, "augment": False},
        {"loss": "l1", "ema": 0.9},
    ],
    ids=["adam-random", "paper-grid", "l1-ema"],
)
def test_cancel_then_resume_equals_uninterrupted(tmp_path, tdata, kw):
    full = train(tdata, config(tmp_path, "full", **kw))
    seen = []

    def cancel():
        return len(seen) >= 6

    part = train(
        tdata,
        config(tmp_path, "part", **kw),
        on_event=lambda e: seen.append(e) if isinstance(e, StepEvent) else None,
        cancel=cancel,
    )
    assert part.cancelled and part.steps == 6 and part.output.exists()
    assert read_checkpoint_state(part.checkpoint)["step"] == 6
    resumed = train(tdata, config(tmp_path, "part", **kw), resume=part.checkpoint)
    assert not resumed.cancelled and resumed.steps == 12
    assert resumed.best_psnr == full.best_psnr and resumed.history == full.history
    wf, wr = weights(full.output), weights(resumed.output)
    assert all(torch.equal(wf[k], wr[k]) for k in wf)


def test_weight_average_follows_its_formula():
    """``WeightAverage``: avg ← d·avg + (1 − d)·w after each step, d = min(decay, (1+t)/(10+t))."""
    from napari_srcnn.engine.recipes import WeightAverage

    net = SRCNN(TINY)
    average = WeightAverage(net, 0.5)
    expected = net.body[0].bias.detach().clone()
    for t, value in enumerate([1.0, -2.0, 3.0, 0.5, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]):
        with torch.no_grad():
            net.body[0].bias.fill_(value)
        average.update(net)
        d = min(0.5, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * value
        assert torch.allclose(average.net().body[0].bias, expected, atol=1e-6)
    assert not average.net().body[0].bias.requires_grad
    assert average.weight_of_before(2) == 0.5**10


def test_ema_run_writes_its_average_and_l1_trains_otherwise(tmp_path, tiles):
    """With ``ema`` the written weights are the average the checkpoint keeps beside the last
    step's weights (and differ from them); ``loss="l1"`` changes what is learnt; both are
    recorded in the weights' metadata."""
    from safetensors.torch import load_file

    data = training_data_from_arrays([tiles], 2, "per-channel", patch_size=21, val_fraction=0)
    avg = train(data, config(tmp_path, "avg", steps=8, ema=0.9))
    ckpt = load_file(str(avg.checkpoint))
    written = weights(avg.output)
    assert all(torch.equal(written[k], ckpt[f"ema.{k}"]) for k in written)
    assert any(not torch.equal(written[k], ckpt[f"model.{k}"]) for k in written)
    assert load_model(avg.output).info.training["ema"] == 0.9
    plain = weights(train(data, config(tmp_path, "l2", steps=8)).output)
    l1 = train(data, config(tmp_path, "l1", steps=8, loss="l1"))
    assert load_model(l1.output).info.training["loss"] == "l1"
    assert any(not torch.equal(weights(l1.output)[k], plain[k]) for k in plain)


def test_cancel_without_validation_planes_keeps_the_last_weights(tmp_path, tiles):
    data = training_data_from_arrays([tiles], 2, "per-channel", patch_size=21, val_fraction=0)
    events = []
    result = train(
        data,
        config(tmp_path, steps=50),
        on_event=events.append,
        cancel=lambda: sum(isinstance(e, StepEvent) for e in events) >= 3,
    )
    assert result.cancelled and result.steps == 3 and math.isnan(result.best_psnr)
    assert load_model(result.output).info.training["steps"] == 3
    # Without cancel: the final weights are written, unscored.
    result = train(data, config(tmp_path, "f", steps=5))
    assert (
        math.isnan(result.best_psnr)
        and load_model(result.output).info.metrics["validation"]["psnr"] is None
    )


def identity_model(path, arch=TINY, scale=2.0):
    """A network that reproduces its (bicubic) input exactly: a good start that is easy to spoil."""
    net = init_identity(SRCNN(arch))
    save_weights(
        path, net, ModelInfo(name="identity", arch=arch, scale=scale, color_mode="per-channel")
    )
    return path


def test_fine_tune_keeps_the_start_model_if_nothing_beats_it(tmp_path, tdata):
    start = identity_model(tmp_path / "start.safetensors")
    events = []
    # A learning rate so large that every step makes things worse.
    tuned = train(
        tdata,
        config(tmp_path, "tuned", init_from=str(start), lr=0.5, steps=4, val_every=2),
        on_event=events.append,
    )
    vals = [e for e in events if isinstance(e, ValidationEvent)]
    assert tuned.start_psnr == pytest.approx(tuned.bicubic_psnr, abs=1e-6)  # identity = bicubic
    assert all(v.psnr < tuned.start_psnr for v in vals[1:]) and not any(
        v.improved for v in vals[1:]
    )
    assert tuned.best_psnr == tuned.start_psnr
    ws, wt = weights(start), weights(tuned.output)
    assert all(torch.equal(ws[k], wt[k]) for k in ws)
    info = load_model(tuned.output).info
    assert info.training["init_from"] == str(start) and info.training["steps"] == 0


def test_check_flat_sees_a_model_that_lifts_black(tmp_path):
    """The identity network keeps every flat image flat; the same network with 2/255 added by
    its last bias lifts black (and every level below white) by 2/255 and fails the check."""
    good = identity_model(tmp_path / "good.safetensors")
    flat = check_flat(good)
    assert flat["ok"] and flat["max_error_255"] <= 0.01
    net = load_model(good).net
    with torch.no_grad():
        net.convs()[-1].bias += 2 / 255
    info = ModelInfo(name="lifted", arch=TINY, scale=2.0, color_mode="per-channel")
    lifted = check_flat(save_weights(tmp_path / "lifted.safetensors", net, info))
    assert not lifted["ok"] and lifted["max_error_255"] == pytest.approx(2.0, abs=0.02)
    assert lifted["level"] < 1.0  # white clips back to white


def test_a_run_records_how_far_its_model_moves_flat_images(tmp_path, tdata):
    result = train(tdata, config(tmp_path))
    recorded = load_model(result.output).info.metrics["flat_max_error_255"]
    assert recorded == result.flat_max_error_255 == check_flat(result.output)["max_error_255"]
    assert math.isfinite(recorded)


def test_weights_that_move_flat_images_are_never_written(tmp_path, tiles):
    """LR partners 20 % darker than their HR planes teach a gain of 1.25: every later step of a
    fine-tune scores better on the held-out plane and lifts flat images by tens of /255, so none
    is written: the run keeps its starting model (identity: flat stays flat) and says why. A run
    from scratch on the same data writes its best step, and its flat check says how far off."""
    lr = np.stack([np.clip(imresize(t.astype(np.float64), 0.5) * 0.8, 0, 65535) for t in tiles])
    data = training_data_from_arrays(
        [tiles],
        2,
        "per-channel",
        lr_arrays=[lr.astype(np.uint16)],
        patch_size=21,
        val_fraction=0.25,
        seed=0,
    )
    events = []
    start = identity_model(tmp_path / "start.safetensors")
    result = train(data, config(tmp_path, init_from=str(start), amp=False), on_event=events.append)
    vals = [e for e in events if isinstance(e, ValidationEvent)]
    assert vals[0].flat_255 < 0.01 and len(vals) == 4
    assert all(v.psnr > result.start_psnr + 1 for v in vals[1:])
    assert all(v.flat_255 > 5 and not v.flat_ok and not v.improved for v in vals[1:])
    assert result.best_psnr == result.start_psnr and result.flat_max_error_255 < 0.01
    history = read_checkpoint_state(result.checkpoint)["history"]
    assert [h["flat"] for h in history] == [v.flat_255 for v in vals]
    scratch = train(data, config(tmp_path, "scratch", amp=False))
    assert scratch.best_psnr > scratch.start_psnr + 1 and scratch.flat_max_error_255 > 5


def test_flat_error_255_is_the_network_part_of_check_flat(tmp_path):
    net = SRCNN(TINY)
    init_identity(net)
    with torch.no_grad():
        net.convs()[-1].bias += 1 / 255
    assert flat_error_255(net) == pytest.approx(1.0, abs=1e-3)
    info = ModelInfo(name="lifted", arch=TINY, scale=2.0, color_mode="per-channel")
    path = save_weights(tmp_path / "lifted.safetensors", net, info)
    # check_flat sees the same lift through the whole pipeline (uint8 output rounds it to 1).
    assert check_flat(path)["max_error_255"] == pytest.approx(1.0, abs=0.02)


def test_resume_errors(tmp_path, tdata, tiles, astronaut):
    first = train(tdata, config(tmp_path, steps=4))
    with pytest.raises(InputError, match="batch-size 8"):
        train(tdata, config(tmp_path, batch_size=4), resume=first.checkpoint)
    with pytest.raises(InputError, match="ema 0.0, this run has 0.99"):
        train(tdata, config(tmp_path, steps=8, ema=0.99), resume=first.checkpoint)
    with pytest.raises(InputError, match="loss 'l2', this run has 'l1'"):
        train(tdata, config(tmp_path, steps=8, loss="l1"), resume=first.checkpoint)
    other = training_data_from_arrays(
        [tiles[:3]], 2, "per-channel", patch_size=21, val_fraction=0.34
    )
    with pytest.raises(
        InputError,
        match="other training data .3 training / 1 validation plane.s., this run has 2 training",
    ):
        train(other, config(tmp_path), resume=first.checkpoint)
    with pytest.raises(WeightsError, match="does not exist"):
        train(tdata, config(tmp_path), resume=tmp_path / "none.ckpt.safetensors")
    with pytest.raises(WeightsError, match="not a napari-srcnn training checkpoint"):
        train(tdata, config(tmp_path), resume=first.output)
    rgb = training_data_from_arrays([astronaut], 2, "rgb", patch_size=21, val_fraction=0)
    with pytest.raises(InputError, match="1 channel"):
        train(rgb, config(tmp_path, "rgb", init_from=str(first.output)))
    with pytest.raises(InputError, match="×2"):
        train(tdata, config(tmp_path, scale=3.0))


@pytest.mark.mps
@pytest.mark.skipif(not mps_available(), reason="needs an Apple GPU (MPS)")
def test_training_runs_on_mps(tmp_path, tdata):
    """The loop on an Apple GPU: fp32, no CUDA-only calls; validation scores it like the CPU."""
    result = train(tdata, config(tmp_path, device="mps"))
    assert result.steps == 12 and math.isfinite(result.best_psnr)
    info = load_model(result.output).info
    assert info.training["hardware"].startswith("Apple GPU (MPS)")
    net = load_model(result.output).net
    assert validate(net, tdata, 64, "cpu")[0] == pytest.approx(
        validate(net.to("mps"), tdata, 64, "mps")[0], abs=1e-3
    )
