"""Label colours: the DPST palette and the palette argument (``auto``, ``dpst``, hex list, triples)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import OptionError

DPST_PALETTE = np.array([
    (0, 0, 255), (0, 255, 0), (0, 0, 0), (255, 255, 255), (255, 0, 0),
    (255, 255, 0), (128, 128, 128), (0, 255, 255), (255, 0, 255),
], dtype=np.uint8)
"""The label colours of Deep Photo Style Transfer (Luan et al. 2017) masks."""


def parse_palette(text: str | Sequence | np.ndarray | None) -> np.ndarray | str:
    """``"auto"``, ``"dpst"``, ``"ff0000,00ff00,#0000ff"`` or a sequence of RGB
    triples -> ``"auto"`` or a (K, 3) uint8 array."""
    if text is None:
        return "auto"
    if isinstance(text, str):
        name = text.strip().lower()
        if name in ("auto", ""):
            return "auto"
        if name == "dpst":
            return DPST_PALETTE.copy()
        colours = []
        for item in name.split(","):
            item = item.strip().lstrip("#")
            try:
                if len(item) != 6:
                    raise ValueError(item)
                colours.append(tuple(int(item[i:i + 2], 16) for i in (0, 2, 4)))
            except ValueError:
                raise OptionError("palette", f"has a bad colour {item!r}: use RRGGBB hex, e.g. ff0000,00ff00, "
                                             f"or auto or dpst") from None
        return np.array(colours, dtype=np.uint8)
    try:
        array = np.asarray(text, dtype=np.float64)
    except (TypeError, ValueError):
        array = np.zeros((0,))
    if array.ndim != 2 or array.shape[1] != 3 or len(array) == 0 or not np.isfinite(array).all() \
            or array.min() < 0 or array.max() > 255:
        raise OptionError("palette", "must be auto, dpst, a hex list or a list of (R, G, B) triples in 0..255")
    return array.astype(np.uint8)
