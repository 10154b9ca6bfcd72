"""One way to turn a pydantic ValidationError into messages that name each field's path.

Shared by every parser of user-written YAML (data contracts, training configs), so an unknown
key or a bad value reads the same everywhere.
"""

from __future__ import annotations

from pydantic import ValidationError


def where(loc: tuple[int | str, ...]) -> str:
    """`("columns", 2, "min")` → `columns[2].min`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe(exc: ValidationError) -> list[str]:
    """One `path: problem` line per distinct problem, in pydantic's order.

    >>> from pydantic import BaseModel, ConfigDict
    >>> class M(BaseModel):
    ...     model_config = ConfigDict(extra="forbid")
    ...     name: str
    >>> try:
    ...     M.model_validate({"name": True, "x": 1})
    ... except ValidationError as exc:
    ...     print(describe(exc)[1])
    x: unknown field
    """
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "string_type" and isinstance(err.get("input"), bool):
            msg += " (YAML reads unquoted yes, no, on, off, true and false as booleans: quote it)"
        path = where(err["loc"])
        problems.append(f"{path}: {msg}" if path else msg)
    # Unions report one problem per member; the first says it best.
    return list(dict.fromkeys(problems))


def summary(source: str, problems: list[str], *, most: int = 10) -> str:
    more = f" (and {len(problems) - most} more)" if len(problems) > most else ""
    return f"{source} is invalid: " + "; ".join(problems[:most]) + more
