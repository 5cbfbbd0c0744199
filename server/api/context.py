"""Request context: every HTTP request gets an id (the client's `X-Request-Id`
when it sends a sane one, else a new one), echoed in the response header and
attached to every log line written while the request runs; responses are
counted by status class for `/metrics`. Websocket connections get their id
in the live endpoint."""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

from ..logs import context_id
from ..metrics import METRICS

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_ids = itertools.count(1)
_PREFIX = f"{os.getpid():x}-"


def new_id(kind: str) -> str:
    return f"{kind}{_PREFIX}{next(_ids)}"


class RequestContext:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if _SANE_ID.match(given) else new_id("r")
        token = context_id.set(request_id)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                METRICS.http_requests.inc(1, f"{message['status'] // 100}xx")
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            context_id.reset(token)
