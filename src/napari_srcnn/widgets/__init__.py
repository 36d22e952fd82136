"""The napari dock widgets of napari-srcnn, one module each: `upscale` (UpscaleWidget) and
`train` (TrainWidget), named by `napari.yaml`; the shared parts are the private modules.
"""
