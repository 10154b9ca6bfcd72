"""Hooks for parsing untrusted JSON strictly: no NaN or Infinity, no repeated keys."""

from __future__ import annotations

from typing import Any

from aidlc.errors import InvalidInput


def reject_constant(text: str) -> object:
    """`json.loads(parse_constant=...)`: NaN, Infinity and -Infinity are not JSON."""
    raise InvalidInput(f"{text} is not JSON")


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads(object_pairs_hook=...)`: an object that repeats a key is refused."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise InvalidInput("an object repeats a key")
    return obj
