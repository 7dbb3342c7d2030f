"""Video: ``container`` (PyAV reading and atomic writing), ``temporal`` (steady statistics,
flow-guided blending), ``schedule`` (styles over time) and ``frames`` (the per-frame pipeline
and ``stylize_video``). Every frame runs through the engine's one forward pass."""
