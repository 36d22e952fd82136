import pytest
import torch

from napari_srcnn.engine.model import PRESETS, SRCNN, ArchSpec, init_paper
from napari_srcnn.errors import InputError


@pytest.mark.parametrize(
    ("name", "params", "halo"),
    [("9-1-5", 8032 + 64 + 32 + 1, 6), ("9-3-5", None, 7), ("9-5-5", 57184 + 64 + 32 + 1, 8)],
)
def test_presets_match_the_paper(name, params, halo):
    spec = PRESETS[name]
    assert spec.halo == halo
    net = SRCNN(spec)
    counted = sum(p.numel() for p in net.parameters())
    assert counted == spec.num_parameters
    if params is not None:  # the paper counts weights; biases added here
        assert counted == params


def test_parse_round_trips_names_and_variants():
    assert ArchSpec.parse("9-5-5") == PRESETS["9-5-5"]
    deep = ArchSpec.parse("9-5-5-5")
    assert deep.extra_layers == 1 and deep.name == "9-5-5-5" and deep.halo == 10
    wide = ArchSpec.parse("9-5-5:128,64", channels=3)
    assert (wide.n1, wide.n2, wide.channels) == (128, 64, 3)
    assert ArchSpec.parse(wide.name, channels=3) == wide
    assert ArchSpec.from_dict(wide.to_dict()) == wide


@pytest.mark.parametrize("bad", ["9-5", "9-x-5", "", "8-5-5", "9-5-5:0,32"])
def test_bad_specs_are_input_errors(bad):
    with pytest.raises(InputError):
        ArchSpec.parse(bad)


def test_same_and_valid_padding_shapes():
    x = torch.rand(2, 1, 40, 30)
    spec = PRESETS["9-5-5"]
    same = SRCNN(spec, padding="replicate")
    valid = SRCNN(spec, padding="valid")
    valid.load_state_dict(same.state_dict())
    assert same(x).shape == x.shape
    assert valid(x).shape == (2, 1, 40 - 16, 30 - 16)
    # The centre of the padded run equals the valid run: padding only adds a border.
    torch.testing.assert_close(same(x)[..., 8:-8, 8:-8], valid(x))
    rgb = SRCNN(ArchSpec(channels=3), padding="reflect")
    assert rgb(torch.rand(1, 3, 20, 20)).shape == (1, 3, 20, 20)


def test_paper_init_statistics():
    net = init_paper(
        SRCNN(ArchSpec.parse("9-5-5:128,64")), generator=torch.Generator().manual_seed(0)
    )
    weights = torch.cat([c.weight.flatten() for c in net.convs()])
    assert abs(weights.std().item() - 1e-3) < 5e-5
    assert abs(weights.mean().item()) < 5e-5
    assert all((c.bias == 0).all() for c in net.convs())


def test_identity_init_reproduces_the_input():
    from napari_srcnn.engine.model import init_identity

    torch.manual_seed(0)
    net = init_identity(SRCNN(ArchSpec.parse("9-5-5")))
    x = torch.rand(1, 1, 30, 30)
    torch.testing.assert_close(net(x), x)


def test_identity_init_passes_each_rgb_channel_and_leaves_the_rest_trainable():
    from napari_srcnn.engine.model import init_identity

    torch.manual_seed(0)
    net = init_identity(SRCNN(ArchSpec.parse("9-5-5", channels=3)), scale=1.0)
    x = torch.rand(2, 3, 30, 30)
    torch.testing.assert_close(net(x), x)  # R, G and B each reproduced, not mixed
    first = net.convs()[0].weight
    assert first[3:].abs().mean() > 1e-3  # the residual filters keep their random start
    with pytest.raises(ValueError, match="at least 3 filters"):
        init_identity(SRCNN(ArchSpec.parse("9-1-5:2,2", channels=3)))
