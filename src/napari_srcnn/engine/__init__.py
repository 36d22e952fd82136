"""The SRCNN engine: plain PyTorch + NumPy, no napari or Qt imports.

This package is the engine's public API; every name below is served lazily (importing
``napari_srcnn.engine`` imports neither torch nor any module below until a name is used)::

    from napari_srcnn.engine import UpscaleOptions, upscale
    hr = upscale(lr, UpscaleOptions(scale=3))

Everything else is a module's own business: reach into a module (``engine.resize``,
``engine.memory``, ...) for its finer tools, named there once.

The layout is flat, one role per module, read in three groups:

- **upscaling**: `options` (what a call may ask) → `planning` (how an array is processed: colour
  mode, channel axis, intensity map) → `cells` (the plan, tiles and their halos) → `runner`
  (forward passes: devices, precision, blocks) → `inference` (`Upscaler`, `upscale()`); `lazy` runs
  the same for dask and zarr, chunk by chunk; `precision` picks fp32 or bf16;
- **training**: `data` (files and arrays → `TrainingData`) → `planes` (2-D planes, normalised) →
  `degradation` (the LR partner of each plane) → `sampling` (sub-images, augmentation) →
  `recipes` (optimiser, schedule, loss, start model) → `checkpoints` → `training` (the loop),
  with `train_config` (settings and events) and `distributed` (DDP);
- **shared base**: `model` (the network), `model_info` / `weights_file` / `weights` (metadata,
  files, the registry of installed models), `resize` (MATLAB's bicubic), `color`
  (colour spaces and intensity maps), `metrics`, `evaluation` and `scoring` (the protocol and
  scientific data), `io` (images), `files` (safe writing), `device`, `memory`.

Why flat, not three subpackages: the groups share the base in both directions of the pipeline
(`color` and `resize` serve planning and degradation alike; `evaluation` runs the `Upscaler`),
the modules are small (none over ~600 lines) and their names already say their group, so
subpackages would only lengthen every import path without removing a dependency. The test
``tests/test_architecture.py`` keeps the structure honest: no import cycle, no private name used
across modules, one import path per public name.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name → the module that defines it.
_LAZY = {
    # upscaling
    "upscale": "napari_srcnn.engine.inference",
    "Upscaler": "napari_srcnn.engine.inference",
    "UpscaleOptions": "napari_srcnn.engine.options",
    "MAX_SCALE": "napari_srcnn.engine.options",
    "output_shape": "napari_srcnn.engine.options",
    "upscale_dask": "napari_srcnn.engine.lazy",
    "upscale_zarr": "napari_srcnn.engine.lazy",
    # models
    "SRCNN": "napari_srcnn.engine.model",
    "ArchSpec": "napari_srcnn.engine.model",
    "ModelInfo": "napari_srcnn.engine.model_info",
    "LoadedModel": "napari_srcnn.engine.weights_file",
    "read_info": "napari_srcnn.engine.weights_file",
    "save_weights": "napari_srcnn.engine.weights_file",
    "load_model": "napari_srcnn.engine.weights",
    "list_models": "napari_srcnn.engine.weights",
    "register_model": "napari_srcnn.engine.weights",
    "unregister_model": "napari_srcnn.engine.weights",
    "default_model_name": "napari_srcnn.engine.weights",
    "fine_tune_start": "napari_srcnn.engine.weights",
    # training
    "train": "napari_srcnn.engine.training",
    "TrainConfig": "napari_srcnn.engine.train_config",
    "TrainResult": "napari_srcnn.engine.train_config",
    "StepEvent": "napari_srcnn.engine.train_config",
    "ValidationEvent": "napari_srcnn.engine.train_config",
    "steps_for_epochs": "napari_srcnn.engine.train_config",
    "TrainingData": "napari_srcnn.engine.data",
    "training_data_from_arrays": "napari_srcnn.engine.data",
    "training_data_from_paths": "napari_srcnn.engine.data",
    # images
    "read_image": "napari_srcnn.engine.io",
    "write_image": "napari_srcnn.engine.io",
    "ImageMeta": "napari_srcnn.engine.io",
    "imresize": "napari_srcnn.engine.resize",
    # metrics and evaluation
    "psnr": "napari_srcnn.engine.metrics",
    "ssim": "napari_srcnn.engine.metrics",
    "evaluate_files": "napari_srcnn.engine.evaluation",
    "protocol_upscaler": "napari_srcnn.engine.evaluation",
    "summarize": "napari_srcnn.engine.evaluation",
    "compare_to_reference": "napari_srcnn.engine.evaluation",
    "score_image": "napari_srcnn.engine.scoring",
    "score_files": "napari_srcnn.engine.scoring",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'napari_srcnn.engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
