"""aidlc: a secure-by-default ML lifecycle platform.

>>> import aidlc
>>> aidlc.__version__
'0.1.0'
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Workspace", "__version__"]

# A library logs; the application (the server, the user's program) decides where logs go.
logging.getLogger("aidlc").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace


def __getattr__(name: str) -> Any:
    # Lazy so that `aidlc --help` does not pay for SQLAlchemy and cryptography.
    if name == "Workspace":
        from aidlc.core.workspace import Workspace

        return Workspace
    raise AttributeError(name)
