import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="session")
def minio(tmp_path_factory):
    why = harness.missing_binaries()
    if why:
        print(f"SKIP: {why}", file=sys.stderr)
        pytest.skip(why)
    # The data dir is kept between runs (the 100k-object folder is uploaded once).
    m = harness.MinIO(harness.CACHE / "minio-data")
    try:
        m.seed("jx-data", dir=harness.write_sample(tmp_path_factory.mktemp("sample")))
        yield m
    finally:
        m.stop()


@pytest.fixture(scope="session")
def daemon(minio):
    d = harness.Daemon()
    d.minio_connector("data", minio, "jx-data", "data")
    d.minio_connector("rwdata", minio, "jx-data", "rwdata", extra='mode = "rw"')
    try:
        d.start()
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def jp_server_config(daemon):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyterlab_s3mounts": True}},
        "S3Mounts": {"socket_path": str(daemon.socket)},
    }
