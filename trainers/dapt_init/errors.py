"""The one exception type users see from this trainer.

Each message names what was wrong, the value seen and what to do, so ``train.py`` can print
it as a single line instead of a traceback.
"""


class DaptInitError(Exception):
    """A problem the user can fix: a config value, a missing file, a stale checkpoint."""
