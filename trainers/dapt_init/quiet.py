"""Imported first by a host's ``train.py`` (tools/dropin.py puts the line at its top).

The toolbox (through wilds' ``outdated``) and openai-clip import the deprecated
``pkg_resources``: a warning on every start that is about neither DAPT_Init nor the user's
setup. Exactly that warning is silenced, before the host imports the toolbox; all others show.
The same ``outdated`` asks PyPI for its latest version in a thread at import and warns when
the machine is offline (a cluster node): ``OUTDATED_IGNORE`` turns that check off, unless the
user set it. This repository's own train.py imports this module first too.
"""
from __future__ import annotations

import os
import warnings

warnings.filterwarnings("ignore", message=r"pkg_resources is deprecated as an API",
                        category=UserWarning)
os.environ.setdefault("OUTDATED_IGNORE", "1")
