"""Style fitting (``style_fit``, ``--style-fit N``): a painting's style vector, fitted to the model's decoder.

The style encoder reads a painting's vector in one pass: an amortised guess, learnt on 26
paintings, which leaves style on the table for a painting unlike them. Fitting takes that
guess and runs ``N`` Adam steps on the vector alone (no weight changes) to lower the training's
style loss (mean/std and Gram of VGG relu1_1..relu4_1) of what the model's own decoder paints
with it on two fixed reference photos (``assets/fit_photos``, 192 px). The photos are
fixed, so the fitted vector belongs to the painting, not to a photo: it is cached with the
plain vectors (in memory and on disk, under its own key), and a folder, a video or a server
pays for it once per painting, model, style size and ``N``.

Why not the photo being stylized: that is :mod:`semstyle.semantic.refine`'s job (``--refine``,
the pixels of one picture); a vector fitted once carries to every photo, frame and tile, and to
the ONNX graphs' vector input. Measured on quality.py's 18 unseen pairs at 512 px (default
model v0.3, colour matching on): style distance 0.489 -> 0.453 with 20 steps, edge F1 0.709 ->
0.714; on the 12 seen pairs it does not help (0.342 -> 0.359, edges 0.686 -> 0.620): it is for
paintings unlike the training's (MODEL_CARD.md, "Style fitting")."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from importlib import resources

import torch
from PIL import Image

from ..config import LossConfig
from ..io.tensors import image_to_tensor
from ..nn.generator import Generator
from ..nn.losses import style_loss
from ..nn.vgg import VGGEncoder

FIT_LAYERS: tuple[str, ...] = LossConfig().style_layers
"""The training's style layers: the vector moves along what the model was taught to match."""

FIT_LOSS_KIND = "both"
"""Mean/std and Gram, the default model's training loss (``style_kind = "both"``)."""

FIT_LEARNING_RATE = 0.05
"""Adam's step on the vector, chosen on training data (``benchmarks/fit_sweep.py``: 3 training
photos x 4 training paintings outside quality.py's, 384 px): at 20 steps 0.05 reached a style
distance of 0.283 against 0.309 at 0.02 and 0.293 at 0.1, edge F1 level at 0.575; at 0.1 or 40
steps edges start to go (F1 0.53-0.55). The vectors' norms are 28-36; the fitted ones move by 10-13."""

FIT_RECIPE = "fit-v1"
"""Part of a fitted vector's cache key: a change of the photos, loss or step size above must change
it, so that vectors fitted the old way (kept on disk) are not served as the new way's."""


def reference_photos() -> torch.Tensor:
    """The fitting's photos as one (2, 3, 192, 192) batch in 0..1."""
    folder = resources.files("semstyle") / "assets" / "fit_photos"
    files = sorted(f for f in folder.iterdir() if f.name.endswith(".jpg"))
    images = []
    for file in files:
        with file.open("rb") as handle, Image.open(handle) as img:
            images.append(image_to_tensor(img.convert("RGB")))
    return torch.cat(images)


def fit_objective(generator: Generator, encoder: VGGEncoder, painting: torch.Tensor,
                  autocast: Callable[[], AbstractContextManager]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The loss fitting lowers, as a function of a (1, D) vector: the style loss of the decoder's
    output on the reference photos against ``painting`` (1, 3, H, W). The photos' and the
    painting's features are computed once, here."""
    device = painting.device
    photos = reference_photos().to(device).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), autocast():
        target = {tap: f.float().expand(len(photos), -1, -1, -1)
                  for tap, f in encoder(painting, FIT_LAYERS).items()}
        content = generator.features(encoder, photos, (generator.content_tap,))

    def loss(vector: torch.Tensor) -> torch.Tensor:
        with autocast():
            image = generator(content, vector.float().expand(len(photos), -1)).float()
            painted = {tap: f.float() for tap, f in encoder(image, FIT_LAYERS).items()}
        return style_loss(painted, target, FIT_LAYERS, FIT_LOSS_KIND)

    return loss


def fit_style_vector(generator: Generator, encoder: VGGEncoder, painting: torch.Tensor, vector: torch.Tensor,
                     steps: int, autocast: Callable[[], AbstractContextManager], *,
                     learning_rate: float = FIT_LEARNING_RATE,
                     on_step: Callable[[int, torch.Tensor], None] | None = None) -> torch.Tensor:
    """``vector`` (1, D) after ``steps`` Adam steps on :func:`fit_objective`. Only the vector moves
    (``torch.autograd.grad`` with respect to it alone: no weight gradients are made).
    ``on_step(done, vector)`` sees the vector after each step (benchmarks/fit_sweep.py reads a
    whole trajectory from one fit)."""
    objective = fit_objective(generator, encoder, painting.to(vector.device), autocast)
    fitted = vector.detach().float().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([fitted], lr=learning_rate)
    for done in range(1, steps + 1):
        with torch.enable_grad():
            (fitted.grad,) = torch.autograd.grad(objective(fitted), [fitted])
        optimizer.step()
        if on_step is not None:
            on_step(done, fitted.detach().clone())
    return fitted.detach()
