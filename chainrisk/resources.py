"""Where the data folders shipped beside the code live: `abis/` (interface ABIs) and `queries/` (analysts' views).

In a checkout (and an editable install) they are the top-level folders; a wheel carries them as chainrisk/_data/
(setup.py copies them in at build time).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder `name` (abis, queries): inside the installed package, else beside it in the checkout."""
    installed = PACKAGE / "_data" / name
    return installed if installed.is_dir() else PACKAGE.parent / name
