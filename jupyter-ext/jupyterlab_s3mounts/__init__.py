"""JupyterLab extension for s3mounts: the "S3 Mounts" sidebar panel and a
server extension that forwards ``/s3mounts/api/*`` to the node's s3mountd
socket. The daemon sees the Jupyter server's own uid (SO_PEERCRED), so a
user can only ever act as themselves."""

from ._version import __version__
from .handlers import S3Mounts, setup_handlers

__all__ = ["__version__", "S3Mounts"]


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "jupyterlab-s3mounts"}]


def _jupyter_server_extension_points():
    return [{"module": "jupyterlab_s3mounts"}]


def _load_jupyter_server_extension(server_app):
    cfg = S3Mounts(parent=server_app)
    setup_handlers(server_app.web_app, cfg, root_dir=getattr(server_app, "root_dir", ""))
    server_app.log.info("jupyterlab_s3mounts %s: forwarding /s3mounts/api to %s", __version__, cfg.socket_path)
