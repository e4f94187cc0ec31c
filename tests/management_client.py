"""A small HTTP client for the management API tests: urllib, basic auth, JSON in and out."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import attrs


@attrs.frozen
class Answer:
    status: int
    body: Any  # decoded JSON, the raw bytes when it is not JSON, None when empty
    headers: dict[str, str]


class Api:
    def __init__(self, url: str, user: str = "guest", password: str = "guest") -> None:
        self.url = url.rstrip("/")
        self.user = user
        self.password = password

    def as_user(self, user: str, password: str) -> Api:
        return Api(self.url, user, password)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Answer:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if auth:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return _answer(response.status, response.read(), response.headers)
        except urllib.error.HTTPError as error:
            return _answer(error.code, error.read(), error.headers)

    def get(self, path: str) -> Any:
        answer = self.call("GET", path)
        assert answer.status == 200, (path, answer)
        return answer.body

    def put(self, path: str, body: Any = None) -> Answer:
        return self.call("PUT", path, body if body is not None else {})

    def post(self, path: str, body: Any = None) -> Answer:
        return self.call("POST", path, body if body is not None else {})

    def delete(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.call("DELETE", path, headers=headers)


def _answer(status: int, data: bytes, headers: Any) -> Answer:
    body: Any = None
    if data:
        try:
            body = json.loads(data)
        except ValueError:
            body = data
    return Answer(status, body, {k.lower(): v for k, v in headers.items()})
