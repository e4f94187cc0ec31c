"""The management API as `amqp-lite ctl` reaches it: urllib, basic auth, JSON in and out."""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

import attrs

# sysexits codes, which rabbitmqctl exits with too.
EX_USAGE, EX_DATAERR, EX_NOUSER, EX_UNAVAILABLE, EX_SOFTWARE, EX_NOPERM = 64, 65, 67, 69, 70, 77
TIMEOUT = 60.0  # seconds, rabbitmqctl's default


class CtlError(Exception):
    """What went wrong, in one line, and the exit status that says so."""

    def __init__(self, reason: str, status: int = EX_SOFTWARE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@attrs.frozen
class Answer:
    status: int
    body: Any  # decoded JSON; None when empty


def segment(name: str) -> str:
    """One path segment: a vhost named "/" is %2F, as the API wants."""
    return quote(name, safe="")


class Api:
    def __init__(self, url: str, username: str, password: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CtlError(f"not a management API URL: {url}", EX_USAGE)
        if parts.username is not None:  # http://user:password@host:port/
            username = parts.username
            password = parts.password or ""
        port = f":{parts.port}" if parts.port else ""
        self.url = f"{parts.scheme}://{parts.hostname}{port}{parts.path.rstrip('/')}"
        self.username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._authorization = f"Basic {token}"

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", self._authorization)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return Answer(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, _json(error.read()))
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            raise CtlError(
                f"cannot reach the management API at {self.url}/: {reason}", EX_UNAVAILABLE
            ) from None
        if answer.status == 401:
            raise CtlError(
                f"the management API refused user '{self.username}': {reason_of(answer)}",
                EX_NOPERM,
            )
        return answer

    def get(self, path: str) -> Any:
        """A resource that must be there."""
        answer = self.call("GET", path)
        if answer.status != 200:
            raise CtlError(f"{path}: {reason_of(answer)}", EX_SOFTWARE)
        return answer.body

    def find(self, path: str) -> Any | None:
        """A resource, or None when it is not there."""
        answer = self.call("GET", path)
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise CtlError(f"{path}: {reason_of(answer)}", EX_SOFTWARE)
        return answer.body


def reason_of(answer: Answer) -> str:
    body = answer.body
    if isinstance(body, dict) and "reason" in body:
        reason = body["reason"]
        return reason if isinstance(reason, str) else json.dumps(reason)
    return f"HTTP {answer.status}"


def _json(data: bytes) -> Any:
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")
