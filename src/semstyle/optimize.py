"""Optimising an image's pixels: what ``semstyle paint`` and ``--refine`` share.

L-BFGS with the strong-Wolfe line search (the optimiser of Gatys et al.; on
these smooth, full-batch objectives it needs far fewer steps than Adam), run
one iteration per ``step()`` call so that progress can be shown and Ctrl-C can
stop it between iterations; ``torch.optim.LBFGS`` keeps its history across
calls. The image must be a contiguous leaf tensor (LBFGS flattens it with
``view``). Pixels are not clamped during the run (clamping inside the closure
would fight the line search); callers clamp the result once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

MAX_LINE_SEARCH_EVALS = 20
"""Function evaluations one iteration's line search may take. ``LBFGS`` caps
its line search at ``max_eval`` minus the evaluations already made in the
``step()`` call, and ``max_eval`` defaults to 1.25 x ``max_iter``: with one
iteration per call that leaves no line search at all (a single trial point,
accepted even when worse), so it is set explicitly."""

StepCallback = Callable[[int, float], None]
"""Called with (iteration, loss) after each iteration."""


def lbfgs(image: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor], steps: int,
          on_step: StepCallback | None = None, first_iteration: int = 1,
          history_size: int = 50, line_search: bool = True) -> tuple[list[float], int, bool]:
    """Minimise ``loss_fn(image)`` over ``image`` in place for ``steps``
    iterations. Returns (the loss at every function evaluation, iterations
    done, whether Ctrl-C stopped it). After a KeyboardInterrupt mid line
    search the image is a trial point: still a valid picture.

    ``line_search=False`` takes L-BFGS's quasi-Newton step as it is: one evaluation per iteration.
    From a good starting point (refinement of a feed-forward result) that step is nearly always
    right, and the strong-Wolfe search spent 1.45 extra evaluations an iteration for a 6% lower
    loss after 20 (measured at 512 px); from noise or a photo (``semstyle paint``) keep it."""
    optimizer = torch.optim.LBFGS([image], lr=1.0, max_iter=1, max_eval=1 + MAX_LINE_SEARCH_EVALS,
                                  tolerance_grad=0.0, tolerance_change=0.0, history_size=history_size,
                                  line_search_fn="strong_wolfe" if line_search else None)
    losses: list[float] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(image)
        loss.backward()
        losses.append(loss.item())
        return loss

    done = 0
    try:
        while done < steps:
            optimizer.step(closure)
            done += 1
            if on_step:
                on_step(first_iteration + done - 1, losses[-1])
    except KeyboardInterrupt:
        return losses, done, True
    return losses, done, False
