"""Errors that users cause (bad input, missing files) as opposed to bugs.

The CLI turns every :class:`SemstyleError` into one line on stderr and exit
code 2; anything else is a bug and keeps its traceback.
"""


class SemstyleError(Exception):
    """A problem the user can fix; the message says how, in one line."""


class ImageError(SemstyleError):
    """An input image cannot be read, or an output image cannot be written."""


class WeightsError(SemstyleError):
    """Pretrained or trained weights are missing, corrupt or incompatible."""


class ConfigError(SemstyleError):
    """A configuration value or command-line option is invalid."""
