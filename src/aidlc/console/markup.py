"""Building HTML safely: every string is escaped unless it is already `Html` (a fragment built
here). Pages are server-rendered; charts are inline SVG made from the workspace's data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape


class Html(str):
    """A trusted HTML fragment (built by these helpers); plain `str` is always escaped."""

    __slots__ = ()


def esc(value: object) -> Html:
    """Escape `value` for text or a quoted attribute; `Html` passes through unchanged.

    >>> esc('<a href="x">') , esc(Html("<b>ok</b>"))
    ('&lt;a href=&quot;x&quot;&gt;', '<b>ok</b>')
    """
    if isinstance(value, Html):
        return value
    return Html(escape("" if value is None else str(value), quote=True))


def _children(children: Iterable[object]) -> str:
    out = []
    for child in children:
        if child is None:
            continue
        if isinstance(child, (str, int, float)):
            out.append(esc(child))
        else:
            out.append(_children(child))  # type: ignore[arg-type]
    return "".join(out)


_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "col"})


def h(tag: str, attrs: Mapping[str, object] | None = None, *children: object) -> Html:
    """An element: attribute values and text children are escaped; `True` attributes are
    written bare, `None`/`False` ones left out.

    >>> h("a", {"href": "/console?x=1&y=<2>", "class": "btn"}, "Go & see")
    '<a href="/console?x=1&amp;y=&lt;2&gt;" class="btn">Go &amp; see</a>'
    """
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        parts.append(name if value is True else f'{name}="{esc(value)}"')
    opening = "<" + " ".join(parts) + ">"
    if tag in _VOID:
        return Html(opening)
    return Html(f"{opening}{_children(children)}</{tag}>")


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    caption: str | None = None,
    empty: str = "Nothing here yet.",
) -> Html:
    """A data table with a caption and column headers (`scope="col"`), or a note when empty."""
    body = [h("tr", None, *(h("td", None, cell) for cell in row)) for row in rows]
    if not body:
        return h("p", {"class": "empty"}, empty)
    head = h("tr", None, *(h("th", {"scope": "col"}, name) for name in headers))
    return h(
        "table",
        None,
        h("caption", None, caption) if caption else None,
        h("thead", None, head),
        h("tbody", None, body),
    )


_STATUS_CLASS = {
    "pass": "ok",  # nosec B105 - a status word mapped to a CSS class, not a password
    "ok": "ok",
    "stable": "ok",
    "verified": "ok",
    "accepted": "ok",
    "fail": "bad",
    "failed": "bad",
    "drift": "bad",
    "breach": "bad",
    "rejected": "bad",
    "CRITICAL": "bad",
    "warn": "warn",
    "WARNING": "warn",
    "partial": "warn",
}


def badge(status: str) -> Html:
    """A status word in a coloured pill; the word itself carries the meaning (not the colour)."""
    return h("span", {"class": f"badge {_STATUS_CLASS.get(status, 'info')}"}, status)


@dataclass
class Page:
    """What a page function returns: the title and the trusted main-area fragment."""

    title: str
    body: Html
    # Extra links for the page's own sub-navigation, (label, href).
    links: list[tuple[str, str]] = field(default_factory=list)
