"""The one exception type users see from this trainer.

Each message names what was wrong, the value seen and what to do, so ``train.py`` can print
it as a single ``error: <message>`` line (exit status 2) instead of a traceback. A host
codebase catches ``DaptInitError`` to do the same; ``datasets.fewshot.DatasetError`` (this
repository's data set classes) is a subclass.
"""


class DaptInitError(Exception):
    """A problem the user can fix: a config value, a missing file, a stale checkpoint."""
