"""The SRCNN engine: plain PyTorch + NumPy, no napari or Qt imports."""
