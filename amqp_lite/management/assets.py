"""The dashboard's files: the page at `/` and its scripts and styles under `/dashboard/`.

They are plain files shipped inside the package (`dashboard/`), read once and served as they
are, without credentials: the page then logs in to the API itself. Everything else goes on to
the API's router. The headers keep the page from being framed or from loading anything that is
not its own, and the page runs no inline script or style, so the policy can be strict.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from amqp_lite.management.http import Request, Response

PREFIX = "/dashboard/"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = (
    ("cache-control", "no-cache"),
    ("content-security-policy", _POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
)


def load() -> dict[str, Response]:
    """Every file of the dashboard, by the path it is served at."""
    served: dict[str, Response] = {}
    folder = resources.files("amqp_lite.management") / "dashboard"
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if not entry.is_file() or suffix not in _TYPES:
            continue
        headers = (("content-type", _TYPES[suffix]), *_HEADERS)
        served[PREFIX + entry.name] = Response(200, entry.read_bytes(), headers)
    if PREFIX + "index.html" in served:
        served["/"] = served[PREFIX + "index.html"]
    return served


def serving(api: Callable[[Request], Response]) -> Callable[[Request], Response]:
    """A handler that answers GET and HEAD for the dashboard's files and passes on the rest."""
    files = load()

    def answer(request: Request) -> Response:
        if request.method in ("GET", "HEAD"):
            found = files.get(request.target.partition("?")[0])
            if found is not None:
                return found
        return api(request)

    return answer
