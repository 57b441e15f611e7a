"""Small file helpers over local paths and ``s3://`` URIs (experiment folders, run files).

S3 access goes through ``react_data.storage.filesystem`` (pyarrow ``S3FileSystem`` with the
configured endpoint), the same filesystem Ray Tune gets as ``storage_filesystem``.
"""

from __future__ import annotations

import os
from typing import Any

_SCHEMES = ("s3://",)


def is_remote(uri: str) -> bool:
    """Whether ``uri`` names object storage (``s3://``) rather than a local path."""
    return str(uri).startswith(_SCHEMES)


def absolute(uri: str) -> str:
    """``uri`` unchanged when remote, else an absolute local path."""
    uri = str(uri)
    return uri if is_remote(uri) else os.path.abspath(os.path.expanduser(uri))


def join(uri: str, *parts: str) -> str:
    """Join path parts with ``/`` (URIs) or the OS separator (local)."""
    if is_remote(uri):
        return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(uri, *parts)


def filesystem(uri: str, endpoint_url: str | None = None) -> tuple[Any, str]:
    """``(pyarrow filesystem or None, path)``: Ray Tune's ``storage_filesystem``/``storage_path``.

    Local paths give ``(None, absolute path)``; ``s3://bucket/prefix`` gives an S3 filesystem
    and ``bucket/prefix``.
    """
    if not is_remote(uri):
        return None, absolute(uri)
    from react_data.storage import filesystem as data_filesystem

    return data_filesystem(uri, endpoint_url=endpoint_url)


def _fs(uri: str, endpoint_url: str | None) -> tuple[Any, str]:
    fs, path = filesystem(uri, endpoint_url)
    if fs is None:
        import pyarrow.fs

        fs = pyarrow.fs.LocalFileSystem()
    return fs, path


def exists(uri: str, endpoint_url: str | None = None) -> bool:
    """Whether a file exists at ``uri``."""
    import pyarrow.fs

    fs, path = _fs(uri, endpoint_url)
    return fs.get_file_info(path).type == pyarrow.fs.FileType.File


def read_text(uri: str, endpoint_url: str | None = None) -> str:
    """The UTF-8 text of the file at ``uri``."""
    fs, path = _fs(uri, endpoint_url)
    with fs.open_input_stream(path) as f:
        return f.read().decode("utf-8")


def write_text(uri: str, text: str, endpoint_url: str | None = None) -> None:
    """Write ``text`` to ``uri`` (parent folders created)."""
    fs, path = _fs(uri, endpoint_url)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.create_dir(parent, recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(text.encode("utf-8"))
