"""The console's pages: what each is called, where it lives, which action a principal needs to
see it, and the lazy import of its module (a module that is not installed shows as unavailable).

A page module offers `page(ws, query) -> Page`, and for an address naming one thing
`dataset_page(ws, name, query)`, `model_page(ws, name, query)` or `event_page(ws, seq, query)`;
`query` holds the request's query parameters and `csrf`, the session's token for POST forms.
Pages that show the server's own state (flag `server`) are called `page(ws, query, server=...)`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One page of the console."""

    key: str
    label: str
    path: str
    # The action a principal's role must grant to see the page; None: anyone signed in.
    action: str | None
    server: bool = False


PAGES: tuple[Entry, ...] = (
    Entry("overview", "Overview", "/console", None, server=True),
    Entry("datasets", "Datasets", "/console/datasets", "object.read:validated"),
    Entry("models", "Models", "/console/models", "model.read"),
    Entry("deployments", "Deployments", "/console/deployments", "model.read", server=True),
    Entry("monitoring", "Monitoring", "/console/monitoring", "monitor.read"),
    Entry("audit", "Audit", "/console/audit", "audit.read"),
    Entry("compliance", "Compliance", "/console/compliance", "compliance.read"),
    Entry("lineage", "Lineage", "/console/lineage", "lineage.read"),
)
BY_KEY = {entry.key: entry for entry in PAGES}


def load(key: str, function: str = "page") -> Callable[..., Any] | None:
    """A page function of a page module, or None when the module is not there."""
    name = f"{__name__}.{key}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the page is there but something it imports is not: a real bug
            raise
        return None
    found: Callable[..., Any] = getattr(module, function)
    return found
