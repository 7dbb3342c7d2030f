"""The defaults of ``semstyle paint``, importable without PyTorch (the command line's parser reads them)."""

DEFAULT_SIZE = 384
"""Longer side of the painting in px: the default steps take about 3.5 minutes on 2 CPU cores."""

DEFAULT_STEPS = 100
"""L-BFGS iterations per level."""

DEFAULT_LEVELS = 2
"""Sizes painted coarse to fine, halving."""
