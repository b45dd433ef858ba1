"""Trained runs as self-contained ONNX or TorchScript files (``export.py``)."""
