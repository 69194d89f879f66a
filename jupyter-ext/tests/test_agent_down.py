"""No daemon: every API call answers a JSON 503 'unavailable', never a traceback."""

import json
import socket

import pytest
from tornado.httpclient import HTTPClientError

AGENT_DOWN = "The s3mounts agent is not running on this node"


@pytest.fixture
def sock_path(tmp_path):
    return tmp_path / "agent.sock"


@pytest.fixture
def jp_server_config(sock_path):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyterlab_s3mounts": True}},
        "S3Mounts": {"socket_path": str(sock_path)},
    }


async def expect_503(jp_fetch, *parts, method="GET"):
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch("s3mounts", "api", *parts, method=method, **({"body": b""} if method == "POST" else {}))
    assert e.value.code == 503
    body = json.loads(e.value.response.body)
    assert body["error"]["code"] == "unavailable"
    assert body["error"]["message"].startswith(AGENT_DOWN)
    assert "Traceback" not in e.value.response.body.decode()
    return body["error"]["message"]


async def test_socket_missing(jp_fetch, sock_path):
    msg = await expect_503(jp_fetch, "v1", "connectors")
    assert "no socket" in msg and str(sock_path) in msg
    await expect_503(jp_fetch, "v1", "events")
    await expect_503(jp_fetch, "v1", "connectors", "x", "activate", method="POST")


async def test_socket_refused(jp_fetch, sock_path):
    # A socket file that nobody listens on any more (a crashed daemon).
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock_path))
    s.close()
    msg = await expect_503(jp_fetch, "v1", "health")
    assert "refused" in msg
    await expect_503(jp_fetch, "v1", "events")


async def test_version_works_without_agent(jp_fetch):
    r = await jp_fetch("s3mounts", "version")
    assert r.code == 200
