"""Exports of trained models to other runtimes: ``onnx`` (image -> image and style-encoder graphs)."""
