"""The frame around every console page: skip link, header with the signed-in principal and a
sign-out button, a navigation that lists only the pages the principal's roles allow, the flash
message of the last action, and the small forms pages use for their POST actions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aidlc.console.markup import Html, Page, h
from aidlc.console.pages import PAGES
from aidlc.core import auth

_STYLESHEET = "/console/static/console.css"


def visible_pages(principal: auth.Principal) -> list[tuple[str, str, str]]:
    """(key, label, path) of each page the principal may open, in navigation order."""
    return [(e.key, e.label, e.path) for e in PAGES if e.action is None or principal.may(e.action)]


def _head(title: str) -> Html:
    return h(
        "head",
        None,
        h("meta", {"charset": "utf-8"}),
        h("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
        h("title", None, f"{title} · aidlc console"),
        h("link", {"rel": "stylesheet", "href": _STYLESHEET}),
    )


def _document(title: str, *body: object) -> str:
    return "<!doctype html>\n" + h("html", {"lang": "en"}, _head(title), h("body", None, *body))


def hidden_csrf(csrf: str) -> Html:
    """The hidden field every POST form carries."""
    return h("input", {"type": "hidden", "name": "csrf", "value": csrf})


def action_form(
    action: str,
    csrf: str,
    button: str,
    *,
    fields: Iterable[object] = (),
    hidden: Mapping[str, str] | None = None,
    danger: bool = False,
    label: str | None = None,
) -> Html:
    """A POST form for one action: hidden CSRF token, hidden `hidden` values, the visible
    `fields` (already built, each with its label) and a submit button."""
    return h(
        "form",
        {"method": "post", "action": action, "class": "action", "aria-label": label},
        hidden_csrf(csrf),
        [h("input", {"type": "hidden", "name": k, "value": v}) for k, v in (hidden or {}).items()],
        list(fields),
        h("button", {"type": "submit", "class": "danger" if danger else None}, button),
    )


def text_field(name: str, label: str, *, required: bool = True, value: str = "") -> Html:
    """A labelled one-line text input."""
    return h(
        "label",
        None,
        label,
        h(
            "input",
            {
                "type": "text",
                "name": name,
                "value": value,
                "required": required,
                "maxlength": "2000",
                "class": "wide",
            },
        ),
    )


def _flash(query: Mapping[str, str]) -> Html | None:
    # The message arrives in the query string after a POST (303 back); it is plain text, escaped,
    # and shortened so a crafted link cannot fill the page.
    if query.get("error"):
        return h("div", {"class": "flash error", "role": "alert"}, query["error"][:500])
    if query.get("ok"):
        return h("div", {"class": "flash ok", "role": "status"}, query["ok"][:500])
    return None


def render(
    page: Page,
    *,
    principal: auth.Principal,
    csrf: str,
    current: str | None,
    query: Mapping[str, str],
) -> str:
    """A whole console HTML document around `page`."""
    links = [
        h(
            "li",
            None,
            h("a", {"href": path, "aria-current": "page" if key == current else None}, label),
        )
        for key, label, path in visible_pages(principal)
    ]
    sub = (
        h(
            "nav",
            {"class": "sub", "aria-label": "On this page"},
            h(
                "ul",
                None,
                [h("li", None, h("a", {"href": href}, text)) for text, href in page.links],
            ),
        )
        if page.links
        else None
    )
    header = h(
        "header",
        None,
        h("a", {"class": "brand", "href": "/console"}, "aidlc console"),
        h(
            "div",
            {"class": "who"},
            h(
                "span",
                None,
                "Signed in as ",
                h("strong", None, principal.name),
                f" ({', '.join(sorted(principal.roles))})",
            ),
            h(
                "form",
                {"method": "post", "action": "/console/logout"},
                hidden_csrf(csrf),
                h("button", {"type": "submit"}, "Sign out"),
            ),
        ),
    )
    return _document(
        page.title,
        h("a", {"class": "skip", "href": "#main"}, "Skip to main content"),
        header,
        h("nav", {"class": "main", "aria-label": "Console"}, h("ul", None, links)),
        h(
            "main",
            {"id": "main", "tabindex": "-1"},
            h("h1", None, page.title),
            _flash(query),
            sub,
            page.body,
        ),
        _footer(),
    )


def _footer() -> Html:
    return h(
        "footer",
        None,
        "aidlc console · a session ends after 30 minutes without use, and after 8 hours.",
    )


def login(*, next_path: str, message: str | None = None) -> str:
    """The sign-in page: one password field for the token, no navigation."""
    return _document(
        "Sign in",
        h("a", {"class": "skip", "href": "#main"}, "Skip to main content"),
        h("header", None, h("span", {"class": "brand"}, "aidlc console")),
        h(
            "main",
            {"id": "main", "tabindex": "-1"},
            h(
                "div",
                {"class": "login"},
                h("h1", None, "Sign in"),
                h("div", {"class": "flash error", "role": "alert"}, message) if message else None,
                h(
                    "form",
                    {"method": "post", "action": "/console/login"},
                    h("input", {"type": "hidden", "name": "next", "value": next_path}),
                    h(
                        "label",
                        {"for": "token"},
                        "API token",
                    ),
                    h(
                        "input",
                        {
                            "type": "password",
                            "id": "token",
                            "name": "token",
                            "autocomplete": "off",
                            "required": True,
                            "aria-describedby": "token-hint",
                            "maxlength": "200",
                        },
                    ),
                    h(
                        "p",
                        {"class": "hint", "id": "token-hint"},
                        "The token an admin issued you (it starts with aidlc_). It is checked "
                        "once; the console then keeps a session cookie.",
                    ),
                    h("button", {"type": "submit"}, "Sign in"),
                ),
            ),
        ),
        _footer(),
    )


def problem(
    title: str,
    message: str,
    *,
    principal: auth.Principal | None = None,
    csrf: str = "",
    current: str | None = None,
) -> str:
    """An error page (403, 404, ...): in the frame when someone is signed in, bare otherwise."""
    body = h(
        "div",
        None,
        h("p", {"class": "flash error", "role": "alert"}, message),
        h("p", None, h("a", {"href": "/console"}, "Back to the overview")),
    )
    if principal is None:
        return _document(
            title,
            h("main", {"id": "main"}, h("h1", None, title), body),
        )
    return render(Page(title, body), principal=principal, csrf=csrf, current=current, query={})
