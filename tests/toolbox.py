"""Marker for tests that need the Dassl toolbox.

Dassl is not on the package index, so CI runs without it. Tests that drive the real
toolbox are marked with ``requires_toolbox``: they run wherever Dassl is importable and are
skipped, with the reason below, everywhere else.
"""
import importlib.util

import pytest

HAVE_TOOLBOX = importlib.util.find_spec("dassl") is not None

SKIP_REASON = (
    "Dassl toolbox not installed: install it from its upstream repository "
    "(see README, 'Install the toolbox') to run the integration tests"
)

requires_toolbox = pytest.mark.skipif(not HAVE_TOOLBOX, reason=SKIP_REASON)
