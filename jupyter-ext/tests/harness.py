"""The real parts the extension's tests run against: MinIO (.tools/bin/minio)
and s3mountd (bin/s3mountd), started on temporary directories the way
internal/testenv/daemon.go starts them for the Go tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import httpx

EXT = Path(__file__).resolve().parents[1]
REPO = EXT.parent
BIN = Path(os.environ.get("S3MOUNTS_BIN") or REPO / "bin")
MINIO_BIN = REPO / ".tools" / "bin" / "minio"
CACHE = EXT / ".cache"

# Fixed credentials of the tests' own loopback MinIO (its data dir is kept in
# jupyter-ext/.cache so that the 100k-object folder is uploaded only once).
MINIO_USER = "s3mounts-test"
MINIO_SECRET = "s3mounts-test-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_binaries() -> Optional[str]:
    for p in (BIN / "s3mountd", MINIO_BIN):
        if not os.access(p, os.X_OK):
            return f"{p} is missing: run `make build` and scripts/setup.sh"
    return None


def _wait(cond, what: str, timeout: float, proc: Optional[subprocess.Popen] = None, log: Optional[Path] = None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} not ready within {timeout}s (last error: {last}); log:\n{tail}")


class MinIO:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.access_key, self.secret_key = MINIO_USER, MINIO_SECRET
        self.log = data_dir.parent / "minio.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, MINIO_ROOT_USER=self.access_key, MINIO_ROOT_PASSWORD=self.secret_key, MINIO_BROWSER="off")
        self.proc = subprocess.Popen(
            [str(MINIO_BIN), "server", "--quiet", "--address", f"127.0.0.1:{self.port}",
             "--console-address", f"127.0.0.1:{free_port()}", str(data_dir)],
            env=env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
        )
        _wait(lambda: httpx.get(self.endpoint + "/minio/health/live", timeout=1).status_code == 200,
              "MinIO", 120, self.proc, self.log)

    def seed(self, bucket: str, *, dir: Optional[Path] = None, generate: int = 0, prefix: str = "") -> None:
        """Upload a tree, or generate N small objects, with the repo's s3seed (parallel PUTs)."""
        args = [str(s3seed()), "-endpoint", self.endpoint, "-access-key", self.access_key, "-bucket", bucket]
        if dir is not None:
            args += ["-dir", str(dir)]
        if generate:
            args += ["-generate", str(generate), "-skip-if-present", "-parallel", "32"]
        if prefix:
            args += ["-prefix", prefix]
        subprocess.run(args, check=True, env=dict(os.environ, S3SEED_SECRET=self.secret_key),
                       stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_S3SEED: Optional[Path] = None


def s3seed() -> Path:
    global _S3SEED
    if _S3SEED is None:
        out = CACHE / "s3seed"
        CACHE.mkdir(exist_ok=True)
        subprocess.run(["go", "build", "-o", str(out), "./internal/tools/s3seed"], cwd=REPO, check=True)
        _S3SEED = out
    return _S3SEED


class Daemon:
    """A real s3mountd on its own temporary directories."""

    def __init__(self, agent_toml: str = ""):
        self.dir = Path(tempfile.mkdtemp(prefix="s3mj-"))  # short: socket paths are limited to 108 bytes
        d = self.dir
        self.config = d / "agent.toml"
        self.connectors_dir = d / "connectors.d"
        self.secrets_dir = d / "secrets"
        self.state_dir = d / "state"
        self.runtime_dir = d / "run"
        self.cache_dir = d / "cache"
        self.project_root = d / "mnt"
        self.socket = d / "agent.sock"
        self.log = d / "s3mountd.log"
        for p in (self.connectors_dir, self.secrets_dir):
            p.mkdir(mode=0o700, parents=True)
        self.config.write_text(
            f'connectors_dir = "{self.connectors_dir}"\nproject_root = "{self.project_root}"\n'
            f'socket = "{self.socket}"\nstate_dir = "{self.state_dir}"\ncache_dir = "{self.cache_dir}"\n'
            f'secrets_dir = "{self.secrets_dir}"\nsocket_group = "root"\nmount_uid = {os.getuid()}\n'
            f'mount_gid = {os.getgid()}\n{agent_toml}\n'
        )
        self.config.chmod(0o600)
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "s3mountd"), "--config", str(self.config), "--runtime-dir", str(self.runtime_dir)],
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
        )
        _wait(lambda: self.request("GET", "/v1/health").status_code == 200, "s3mountd", 120, self.proc, self.log)

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), base_url="http://s3mountd",
                            timeout=timeout)

    def request(self, method: str, path: str) -> httpx.Response:
        with self.client() as c:
            return c.request(method, path)

    def connector(self, cid: str) -> dict:
        r = self.request("GET", f"/v1/connectors/{cid}")
        r.raise_for_status()
        return r.json()

    def wait_state(self, cid: str, state: str, timeout: float = 120) -> dict:
        _wait(lambda: self.connector(cid)["state"] == state, f"connector {cid} {state}", timeout, self.proc, self.log)
        return self.connector(cid)

    def write_secret(self, name: str, value: str) -> None:
        p = self.secrets_dir / name
        p.write_text(value)
        p.chmod(0o600)

    def write_connector(self, cid: str, text: str) -> None:
        tmp = self.connectors_dir / f".{cid}.toml.tmp"
        tmp.write_text(text)
        tmp.chmod(0o600)
        tmp.rename(self.connectors_dir / f"{cid}.toml")

    def minio_connector(self, cid: str, m: MinIO, bucket: str, mount_name: str, *, active: bool = False,
                        extra: str = "") -> None:
        self.write_secret(cid + "-key", m.secret_key)
        self.write_connector(cid, f'''name = "Test {cid}"
description = "Test connector {cid}"
endpoint = "{m.endpoint}"
region = "us-east-1"
bucket = "{bucket}"
mount_name = "{mount_name}"
addressing = "path"
active = {json.dumps(active)}
{extra}

[credentials]
access_key_id = "{m.access_key}"
secret_name = "{cid}-key"
''')

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Nothing may stay mounted, whatever the daemon did.
        for mp in mounts_under(self.project_root):
            subprocess.run(["umount", "-l", mp], check=False)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def mounts_under(root: Path) -> list:
    root_s = str(root)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 5:
                continue
            mp = fields[4].encode().decode("unicode_escape")
            if mp == root_s or mp.startswith(root_s + "/"):
                out.append(mp)
    return sorted(out, reverse=True)


# The small sample tree the tests browse and read back through the mount.
SAMPLE = {
    "tables/iris.csv": b"sepal_length,sepal_width,species\n5.1,3.5,setosa\n4.9,3.0,setosa\n",
    "tables/sub/deep.json": b'{"a": 1}\n',
    "images/pixel.bin": bytes(range(256)),
    "readme.txt": b"hello from s3mounts\n",
}


def write_sample(dest: Path) -> Path:
    for rel, data in SAMPLE.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return dest
