"""Torch modules and the math on their features: no files, no images, no options.

``vgg`` (the frozen pretrained encoder), ``hed`` (its edge detector),
``generator`` (style encoder, injection, decoder: the one forward pass),
``discriminator``, ``stats`` (instance statistics, written once) and ``losses``.
"""
