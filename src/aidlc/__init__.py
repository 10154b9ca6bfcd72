"""aidlc: a secure-by-default ML lifecycle platform.

>>> import aidlc
>>> aidlc.__version__
'0.1.0'

`aidlc.Workspace` opens a workspace; `aidlc.import_model(ws, path_or_object, ...)` brings a
model trained elsewhere into its registry (see `aidlc.registry.importing.import_model`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Workspace", "__version__", "import_model"]

# A library logs; the application (the server, the user's program) decides where logs go.
logging.getLogger("aidlc").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace
    from aidlc.registry.importing import import_model


def __getattr__(name: str) -> Any:
    # Lazy so that `aidlc --help` does not pay for SQLAlchemy and cryptography.
    if name == "Workspace":
        from aidlc.core.workspace import Workspace

        return Workspace
    if name == "import_model":
        from aidlc.registry.importing import import_model

        return import_model
    raise AttributeError(name)
