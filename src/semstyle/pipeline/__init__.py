"""Inference below the Python API: options, images as tensors, style vectors, the engine.

``options`` (StylizeOptions: every default, validated once), ``palette``
(label colours), ``styles`` (style images, blends and their weights),
``prepare`` (images to network-ready tensors and back: size caps, margins,
colour preservation) and ``engine`` (the loaded networks and the one
tensor-level stylization that everything above calls).
"""
