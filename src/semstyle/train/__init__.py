"""Training: ``data`` (image folders), ``trainer`` (one step, models, checkpoints), ``loop`` (the run).

``from semstyle.train.loop import train`` runs a training; the losses live in
:mod:`semstyle.nn.losses`, checkpoint files in :mod:`semstyle.checkpoints`.
"""
