"""Errors that users cause (bad input, missing files) as opposed to bugs.

The CLI turns every :class:`SemstyleError` into one line on stderr and exit
code 2 (the HTTP API will turn them into 4xx JSON errors); anything else is a
bug and keeps its traceback. Library messages name parameters (``strength``),
never command-line flags: :class:`OptionError` carries the parameter's name
so that each face (CLI, HTTP) can say it in its own words.
"""

import re


class SemstyleError(Exception):
    """A problem the user can fix; the message says how, in one line."""


class ImageError(SemstyleError):
    """An input image cannot be read, or an output image cannot be written."""


class WeightsError(SemstyleError):
    """Pretrained or trained weights are missing, corrupt or incompatible."""


class ConfigError(SemstyleError):
    """A configuration value or command-line option is invalid."""


class OptionError(ConfigError):
    """One named option has a bad value: ``OptionError("strength", "must be between 0 and 1, got 2")``.

    ``str()`` is ``"strength must be between 0 and 1, got 2"``; the CLI replaces
    the name with its flag (``--strength must be ...``). Other options the
    problem mentions are written ``{name}``: ``"needs {labels} or {auto_regions}"``."""

    def __init__(self, option: str, problem: str):
        self.option = option
        self.problem = problem
        super().__init__(self.render(lambda name: name))

    def render(self, spell) -> str:
        """The message with every option name (this one and ``{name}`` s) spelled by ``spell(name)``."""
        problem = re.sub(r"\{([a-z_]+)\}", lambda m: spell(m.group(1)), self.problem)
        return f"{spell(self.option)} {problem}"


class BusyError(SemstyleError):
    """Another process holds a resource this one needs (a training run's folder)."""


class SemstyleWarning(UserWarning):
    """Something odd but usable (a stretched mask, audio that cannot be copied); the CLI
    prints each as one ``semstyle: warning: ...`` line."""
