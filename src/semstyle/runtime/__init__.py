"""Inference without PyTorch: ``onnx`` runs exported graphs with onnxruntime, numpy and Pillow."""
