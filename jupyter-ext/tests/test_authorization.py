"""@authorized on every handler: an Authorizer that refuses the "s3mounts"
resource closes every route, and nothing reaches the daemon."""

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import HTTPClientError


class NoS3Mounts(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        return resource != "s3mounts"


@pytest.fixture
def jp_server_config(daemon):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyterlab_s3mounts": True}, "authorizer_class": NoS3Mounts},
        "S3Mounts": {"socket_path": str(daemon.socket)},
    }


async def test_authorizer_refuses(jp_fetch, daemon):
    for parts, method in [(("version",), "GET"), (("api", "v1", "connectors"), "GET"),
                          (("api", "v1", "events"), "GET"),
                          (("api", "v1", "connectors", "data", "activate"), "POST")]:
        with pytest.raises(HTTPClientError) as e:
            await jp_fetch("s3mounts", *parts, method=method, **({"body": b""} if method == "POST" else {}))
        assert e.value.code == 403, parts
    assert daemon.connector("data")["state"] == "inactive"
    # Jupyter's own API still answers: only this resource is refused.
    r = await jp_fetch("api", "status")
    assert r.code == 200
