"""``python -m semstyle.cli``: the same as the ``semstyle`` command (torchrun starts it this way)."""

import sys

from . import main

sys.exit(main())
