"""The server extension against a real s3mountd and MinIO: authentication,
forwarding, the allow-list, the event stream passed through as it comes."""

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest
from tornado.httpclient import HTTPClientError

from jupyterlab_s3mounts import __version__
from jupyterlab_s3mounts.handlers import allowed

EXT = Path(__file__).resolve().parents[1]


async def fetch_json(jp_fetch, *parts, method="GET", **kw):
    if method == "POST":
        kw.setdefault("body", b"")
    r = await jp_fetch("s3mounts", *parts, method=method, **kw)
    return r.code, json.loads(r.body)


async def fetch_error(jp_fetch, *parts, method="GET", **kw):
    if method == "POST":
        kw.setdefault("body", b"")
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("s3mounts", *parts, method=method, **kw)
    return e.value.code, json.loads(e.value.response.body)


def test_versions_agree():
    pkg = json.loads((EXT / "package.json").read_text())
    ts = (EXT / "src" / "version.ts").read_text()
    assert pkg["version"] == __version__
    assert f"'{__version__}'" in ts


def test_allow_list():
    ok = [("GET", "v1/health"), ("GET", "v1/connectors"), ("GET", "v1/connectors/data"),
          ("GET", "v1/connectors/data/files"), ("GET", "v1/events"), ("GET", "v1/pubkey"),
          ("POST", "v1/connectors/data/activate"), ("POST", "v1/connectors/a.b-c_d/deactivate"),
          ("POST", "v1/connectors/data/test"), ("POST", "v1/connectors/data/refresh")]
    bad = [("GET", "metrics"), ("GET", "v1/metrics"), ("POST", "v1/connectors"), ("GET", "v1/connectors/data/activate"),
           ("POST", "v1/connectors/../activate"), ("GET", "v1/connectors/./files"), ("GET", "v2/health"),
           ("GET", "v1/health/x"), ("DELETE", "v1/connectors/data"), ("GET", "")]
    for m, p in ok:
        assert allowed(m, p), (m, p)
    for m, p in bad:
        assert not allowed(m, p), (m, p)


async def test_version_endpoint(jp_fetch, jp_root_dir):
    code, body = await fetch_json(jp_fetch, "version")
    assert code == 200
    assert body["version"] == __version__
    assert body["root_dir"] == str(jp_root_dir)


async def test_authentication_required(jp_fetch, jp_base_url, jp_http_port, daemon):
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}s3mounts/"
    async with httpx.AsyncClient() as c:
        for path in ("api/v1/health", "api/v1/connectors", "version"):
            r = await c.get(url + path)
            assert r.status_code == 403, (path, r.status_code, r.text)
        r = await c.post(url + "api/v1/connectors/data/activate")
        assert r.status_code == 403, r.text
        r = await c.get(url + "api/v1/connectors", headers={"Authorization": "token wrong"})
        assert r.status_code == 403
    # Nothing reached the daemon: the connector was not activated.
    assert daemon.connector("data")["state"] == "inactive"


async def test_forwarding(jp_fetch, daemon):
    code, health = await fetch_json(jp_fetch, "api", "v1", "health")
    assert code == 200 and health["status"] == "ok"
    code, body = await fetch_json(jp_fetch, "api", "v1", "connectors")
    ids = {c["id"] for c in body["connectors"]}
    assert {"data", "rwdata"} <= ids
    code, c = await fetch_json(jp_fetch, "api", "v1", "connectors", "data")
    assert c["bucket"] == "jx-data" and c["mode"] == "ro"
    assert "activate" in c["actions"]  # root is admin
    code, t = await fetch_json(jp_fetch, "api", "v1", "connectors", "data", "test", method="POST")
    assert code == 200 and t["ok"] is True, t
    assert {ch["name"] for ch in t["checks"]} >= {"endpoint", "credentials", "bucket", "list"}


async def test_daemon_errors_pass_through(jp_fetch):
    code, body = await fetch_error(jp_fetch, "api", "v1", "connectors", "no-such-connector")
    assert code == 404
    assert body["error"]["code"] == "not_found"
    assert "no-such-connector" in body["error"]["message"]
    # Browsing an inactive connector: the daemon's own error, status and body.
    code, body = await fetch_error(jp_fetch, "api", "v1", "connectors", "data", "files", params={"path": ""})
    assert code >= 400 and set(body["error"]) == {"code", "message"}


async def test_not_an_api_route(jp_fetch):
    for parts, method in [(("api", "metrics"), "GET"), (("api", "v1", "metrics"), "GET"),
                          (("api", "v1", "connectors", "data", "activate"), "GET"),
                          (("api", "v1", "connectors"), "POST"), (("api", "v1", "nope"), "GET")]:
        code, body = await fetch_error(jp_fetch, *parts, method=method)
        assert code == 404, parts
        assert body["error"]["code"] == "not_found"
        assert "not an s3mounts API route" in body["error"]["message"]


async def test_request_body_capped(jp_fetch):
    code, body = await fetch_error(jp_fetch, "api", "v1", "connectors", "data", "test", method="POST",
                                   body=b"x" * (64 * 1024 + 1))
    assert code == 413 and body["error"]["code"] == "invalid"


async def test_activate_browse_deactivate(jp_fetch, daemon):
    code, c = await fetch_json(jp_fetch, "api", "v1", "connectors", "data", "activate", method="POST",
                               request_timeout=120)
    try:
        assert code == 200 and c["state"] == "mounted", c
        code, files = await fetch_json(jp_fetch, "api", "v1", "connectors", "data", "files",
                                       params={"path": "tables", "limit": "1"})
        assert code == 200
        assert len(files["entries"]) == 1 and files["next_cursor"], files
        seen = list(files["entries"])
        cursor = files["next_cursor"]
        while cursor:
            _, page = await fetch_json(jp_fetch, "api", "v1", "connectors", "data", "files",
                                       params={"path": "tables", "limit": "1", "cursor": cursor})
            seen += page["entries"]
            cursor = page.get("next_cursor")
        byname = {e["name"]: e for e in seen}
        assert set(byname) == {"iris.csv", "sub"}
        assert byname["sub"]["type"] == "dir"
        iris = byname["iris.csv"]
        assert iris["s3_uri"] == "s3://jx-data/tables/iris.csv"
        assert Path(iris["path"]).read_bytes().startswith(b"sepal_length,")
    finally:
        code, c = await fetch_json(jp_fetch, "api", "v1", "connectors", "data", "deactivate", method="POST",
                                   request_timeout=120)
    assert c["state"] == "inactive"


async def test_events_streamed_through(jp_fetch, jp_base_url, jp_http_port, jp_auth_header, daemon):
    """The browser's EventSource gets each state change as it happens, through Jupyter."""
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}s3mounts/api/v1/events"
    states = []
    got_open = asyncio.Event()
    mounted = asyncio.Event()

    async def listen():
        async with httpx.AsyncClient(timeout=None) as c:
            async with c.stream("GET", url, headers=jp_auth_header) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                got_open.set()
                async for line in r.aiter_lines():
                    m = re.match(r"data: (.*)", line)
                    if m:
                        c = json.loads(m.group(1))
                        if c["id"] == "rwdata":
                            states.append(c["state"])
                            if c["state"] == "mounted":
                                mounted.set()
                                return

    task = asyncio.ensure_future(listen())
    await asyncio.wait_for(got_open.wait(), 30)
    # Activate straight on the daemon: the change must arrive through Jupyter
    # while the stream stays open (nothing buffered until the end).
    await asyncio.get_running_loop().run_in_executor(None, lambda: daemon.request("POST", "/v1/connectors/rwdata/activate"))
    try:
        await asyncio.wait_for(mounted.wait(), 60)
        assert states[-1] == "mounted"
        assert not task.done() or task.exception() is None
    finally:
        task.cancel()
        await asyncio.get_running_loop().run_in_executor(None, lambda: daemon.request("POST", "/v1/connectors/rwdata/deactivate"))


def daemon_connections(sock) -> int:
    """Connected sockets on the daemon's side of its API socket (/proc/net/unix)."""
    n = 0
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == str(sock) and fields[5] == "03":
                n += 1
    return n


async def test_events_stream_closed_upstream_when_browser_leaves(jp_fetch, jp_base_url, jp_http_port, jp_auth_header, daemon):
    """A browser that goes away does not leave a stream open on the daemon."""
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}s3mounts/api/v1/events"

    async def settle(want, timeout=60.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while daemon_connections(daemon.socket) != want:
            if asyncio.get_running_loop().time() > deadline:
                return daemon_connections(daemon.socket)
            await asyncio.sleep(0.05)
        return want

    before = daemon_connections(daemon.socket)
    async with httpx.AsyncClient(timeout=None) as c:
        async with c.stream("GET", url, headers=jp_auth_header) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line.startswith(":"):
                    break  # the daemon's opening comment came through
            assert await settle(before + 1) == before + 1
    # The browser's side is closed: Jupyter closes its stream to the daemon.
    assert await settle(before) == before
