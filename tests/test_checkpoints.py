"""The training checkpoint format."""

import pytest
import torch
from safetensors.torch import save_file

from napari_srcnn.engine.checkpoints import read_checkpoint_state
from napari_srcnn.errors import WeightsError


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
