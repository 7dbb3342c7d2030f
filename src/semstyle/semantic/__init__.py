"""Semantic style transfer: regions, label maps, automatic regions, refinement, doodles.

``masks`` (reading, feathering, compositing), ``labels`` (palettes and label
index maps), ``auto`` (automatic regions), ``transfer`` (label-matched
transfer), ``refine`` (L-BFGS refinement of a result), ``evaluate``
(label-match rate), ``compose`` (the steps of a stylization with regions) and
``paint`` (doodles by optimisation). Everything runs through the engine's one
forward pass (:mod:`semstyle.pipeline.engine`).
"""
