"""Handlers that forward the panel's requests to s3mountd's Unix socket.

Only the daemon's own routes pass (an allow-list); bodies are size-capped;
``/v1/events`` is streamed through chunk by chunk. Every handler requires
Jupyter's authentication and authorization. When the daemon cannot be
reached the answer is a JSON 503 with code ``unavailable``, never a
traceback; the daemon's own errors pass through with their status and body.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from urllib.parse import quote
from typing import Optional

import httpx
import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.iostream import StreamClosedError
from traitlets import Float, Int, Unicode
from traitlets.config import Configurable

from ._version import __version__

DEFAULT_SOCKET = "/run/s3mounts/agent.sock"
AUTH_RESOURCE = "s3mounts"

_ID = r"[A-Za-z0-9._~@+-]+"
# The daemon's routes that may be reached through Jupyter: method -> patterns
# (matched against the path after /s3mounts/api/, without the query).
ALLOWED = {
    "GET": [
        re.compile(r"v1/health"),
        re.compile(r"v1/pubkey"),
        re.compile(r"v1/connectors"),
        re.compile(rf"v1/connectors/{_ID}"),
        re.compile(rf"v1/connectors/{_ID}/files"),
        re.compile(r"v1/events"),
    ],
    "POST": [
        re.compile(rf"v1/connectors/{_ID}/(activate|deactivate|refresh|test)"),
    ],
}
STREAMED = {"v1/events"}


def allowed(method: str, path: str) -> bool:
    """Whether ``method path`` is one of the daemon's routes."""
    # "." and ".." segments never pass, whatever the pattern.
    if any(seg in (".", "..") for seg in path.split("/")):
        return False
    return any(p.fullmatch(path) for p in ALLOWED.get(method, ()))


class S3Mounts(Configurable):
    """Settings of the s3mounts server extension (``c.S3Mounts.*``)."""

    socket_path = Unicode(
        os.environ.get("S3MOUNTS_SOCKET") or DEFAULT_SOCKET,
        config=True,
        help="Path of s3mountd's API socket (default: $S3MOUNTS_SOCKET, else /run/s3mounts/agent.sock).",
    )
    max_request_bytes = Int(64 * 1024, config=True, help="Largest request body forwarded to the daemon.")
    max_response_bytes = Int(
        32 * 1024 * 1024, config=True, help="Largest (non-streamed) answer accepted from the daemon."
    )
    timeout = Float(
        180.0,
        config=True,
        help="Seconds to wait for a (non-streamed) answer of the daemon; activation waits until mounted.",
    )


def _error(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def agent_down_message(socket_path: str, why: str) -> str:
    return f"The s3mounts agent is not running on this node ({why}; socket {socket_path})"


class _Base(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def s3cfg(self) -> S3Mounts:
        return self.settings["s3mounts_config"]

    def send_error_json(self, status: int, code: str, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(_error(code, message))

    def write_error(self, status_code: int, **kwargs) -> None:  # never a traceback
        self.set_header("Content-Type", "application/json")
        reason = self._reason or "error"
        code = {400: "invalid", 403: "forbidden", 404: "not_found", 405: "invalid", 413: "invalid"}.get(
            status_code, "internal"
        )
        self.finish(_error(code, reason))


class VersionHandler(_Base):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish(
            json.dumps(
                {
                    "version": __version__,
                    "root_dir": self.settings.get("s3mounts_root_dir", ""),
                    "socket_path": self.s3cfg.socket_path,
                }
            )
        )


class ProxyHandler(_Base):
    """``/s3mounts/api/<path>`` -> the daemon's ``/<path>``."""

    _stream_task: Optional[asyncio.Task] = None

    def _transport(self) -> httpx.AsyncHTTPTransport:
        return httpx.AsyncHTTPTransport(uds=self.s3cfg.socket_path)

    def _client(self, timeout: Optional[float]) -> httpx.AsyncClient:
        # One connection per request: a Unix socket is cheap, and a daemon
        # restart never leaves a stale pooled connection behind.
        return httpx.AsyncClient(
            transport=self._transport(),
            base_url="http://s3mountd",
            timeout=httpx.Timeout(timeout, connect=5.0),
        )

    def _target(self, path: str) -> Optional[str]:
        if not allowed(self.request.method or "", path):
            self.send_error_json(404, "not_found", f"{self.request.method} /{path} is not an s3mounts API route")
            return None
        target = "/" + "/".join(quote(seg, safe="@+~-._") for seg in path.split("/"))
        if self.request.query:
            target += "?" + self.request.query
        return target

    def _down(self, exc: BaseException) -> None:
        sock = self.s3cfg.socket_path
        if isinstance(exc, httpx.TimeoutException):
            why = f"no answer within {self.s3cfg.timeout:g}s"
        elif not os.path.exists(sock):
            why = "no socket"
        elif isinstance(exc, httpx.ConnectError) and "ermission" in str(exc):
            why = "permission denied on the socket: is this user in its group?"
        else:
            why = "connection refused" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
        self.log.warning("s3mounts: daemon unreachable at %s: %s", sock, exc)
        self.send_error_json(503, "unavailable", agent_down_message(sock, why))

    @tornado.web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        target = self._target(path)
        if target is None:
            return
        if path in STREAMED:
            await self._stream(target)
        else:
            await self._forward("GET", target, None)

    @tornado.web.authenticated
    @authorized
    async def post(self, path: str) -> None:
        target = self._target(path)
        if target is None:
            return
        body = self.request.body or b""
        if len(body) > self.s3cfg.max_request_bytes:
            self.send_error_json(
                413, "invalid", f"request body of {len(body)} bytes exceeds {self.s3cfg.max_request_bytes}"
            )
            return
        await self._forward("POST", target, body)

    async def _forward(self, method: str, target: str, body: Optional[bytes]) -> None:
        cap = self.s3cfg.max_response_bytes
        headers = {"Accept": "application/json"}
        if body:
            headers["Content-Type"] = self.request.headers.get("Content-Type", "application/json")
        try:
            async with self._client(self.s3cfg.timeout) as client:
                async with client.stream(method, target, content=body, headers=headers) as resp:
                    chunks, size = [], 0
                    async for chunk in resp.aiter_raw():
                        size += len(chunk)
                        if size > cap:
                            self.send_error_json(
                                502, "internal", f"the s3mounts agent's answer exceeds {cap} bytes"
                            )
                            return
                        chunks.append(chunk)
        except (httpx.TransportError, OSError) as exc:
            self._down(exc)
            return
        self.set_status(resp.status_code)
        self.set_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
        self.set_header("Cache-Control", "no-store")
        self.finish(b"".join(chunks))

    async def _stream(self, target: str) -> None:
        self._stream_task = asyncio.ensure_future(self._pump(target))
        try:
            await self._stream_task
        except asyncio.CancelledError:
            pass  # the browser went away

    async def _pump(self, target: str) -> None:
        try:
            async with self._client(None) as client:
                async with client.stream(
                    "GET", target, headers={"Accept": "text/event-stream"}
                ) as resp:
                    if resp.status_code != 200:
                        body = await resp.aread()
                        self.set_status(resp.status_code)
                        self.set_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
                        self.finish(body[: self.s3cfg.max_response_bytes])
                        return
                    self.set_status(200)
                    self.set_header("Content-Type", "text/event-stream")
                    self.set_header("Cache-Control", "no-cache")
                    self.set_header("X-Accel-Buffering", "no")
                    await self.flush()  # headers out now: the browser's EventSource opens
                    async for chunk in resp.aiter_raw():
                        self.write(chunk)
                        await self.flush()
        except StreamClosedError:
            return
        except (httpx.TransportError, OSError) as exc:
            if self._headers_written:
                return  # the daemon went away mid-stream: end it; EventSource reconnects
            self._down(exc)
            return
        if not self._finished:
            self.finish()

    def on_connection_close(self) -> None:
        if self._stream_task is not None and not self._stream_task.done():
            self._stream_task.cancel()
        super().on_connection_close()


def setup_handlers(web_app, cfg: S3Mounts, root_dir: str = "") -> None:
    base = web_app.settings["base_url"]
    web_app.settings["s3mounts_config"] = cfg
    web_app.settings["s3mounts_root_dir"] = os.path.abspath(os.path.expanduser(root_dir)) if root_dir else ""
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "s3mounts", "version"), VersionHandler),
            (url_path_join(base, "s3mounts", "api", "(.*)"), ProxyHandler),
        ],
    )
