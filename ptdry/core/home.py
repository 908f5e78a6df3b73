"""ptdry's home directory: where the embedded database, artifacts and journals live.

``$PTDRY_HOME`` when set, else ``~/.ptdry``. Nothing is created at import; callers ask for
the directory (or a subdirectory) when they need it.
"""

from __future__ import annotations

import os
import pathlib

__all__ = ["ptdry_home"]


def ptdry_home(*parts: str, create: bool = True) -> pathlib.Path:
    """The home directory (or ``home/part/...``), created on demand.

    Example:
        >>> ptdry_home("journal", create=False).name
        'journal'
    """
    root = os.environ.get("PTDRY_HOME") or os.path.join(os.path.expanduser("~"), ".ptdry")
    path = pathlib.Path(root).expanduser().joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
