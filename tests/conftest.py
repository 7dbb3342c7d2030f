import os

import pytest
import torch

# Two cores: keep torch from oversubscribing them when tests spawn processes.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def vgg():
    """The real pretrained encoder (fetched into the user cache on first use)."""
    from semstyle.weights import load_encoder
    from semstyle.nn.vgg import VGGEncoder

    return load_encoder()
