"""Where datasets live: a local directory or ``s3://bucket/prefix``, behind one pyarrow filesystem.

S3 endpoint: the ``endpoint_url`` argument, else ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``,
else AWS itself. Credentials come from the standard AWS chain (environment variables, shared
config/credentials files and profiles, instance roles). By default they are resolved once here
(with botocore when it is installed) and carried by the filesystem object, so Ray workers on other
nodes that receive it use the same identity; ``resolve_credentials=False`` leaves resolution to
each process instead (e.g. every node has its own instance role). Credentials never appear in
messages or logs.

Failures are quick and say what to check: an unreachable endpoint raises `ConnectionError` after a
short connect timeout and at most ``max_attempts`` tries; a missing bucket raises
`FileNotFoundError` with the command that creates it.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow.fs as pafs

__all__ = ["Store", "boto3_client", "filesystem", "is_s3", "resolve_endpoint"]

CONNECT_TIMEOUT_S = 3.0  # a reachable endpoint answers a TCP connect well within this
REQUEST_TIMEOUT_S = 30.0  # per request; large shard GETs stream, this bounds stalls
READ_BUFFER = 32 << 20  # whole-file reads in few large GETs (S3 servers charge per request)
MAX_ATTEMPTS = 2  # one retry for transient errors; more only delays a clear failure
_ENDPOINT_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
_NETWORK_MARKERS = ("NETWORK_CONNECTION", "Could not connect", "curlCode", "Timeout",
                    "timed out", "Connection refused", "Couldn't resolve")


def is_s3(uri: str | os.PathLike) -> bool:
    """True for ``s3://`` URIs."""
    return str(uri).startswith("s3://")


def resolve_endpoint(endpoint_url: str | None = None) -> str | None:
    """The S3 endpoint URL to use: the argument, else the AWS endpoint env vars, else None (AWS)."""
    if endpoint_url:
        return endpoint_url
    for var in _ENDPOINT_ENV:
        if os.environ.get(var):
            return os.environ[var]
    return None


def _split_s3(uri: str) -> tuple[str, str]:
    rest = uri[len("s3://"):].strip("/")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"S3 URI {uri!r} has no bucket: expected s3://bucket[/prefix]")
    return bucket, prefix


def _credentials(access_key: str | None, secret_key: str | None, session_token: str | None,
                 resolve: bool) -> dict[str, str]:
    if access_key or secret_key:
        if not (access_key and secret_key):
            raise ValueError("pass both access_key and secret_key, or neither (to use the "
                             "standard AWS credential chain)")
        return {"access_key": access_key, "secret_key": secret_key,
                **({"session_token": session_token} if session_token else {})}
    if not resolve:
        return {}
    try:
        import botocore.session
    except ImportError:  # pyarrow's own SDK walks the same chain
        return {}
    creds = botocore.session.Session().get_credentials()
    if creds is None:
        return {}
    frozen = creds.get_frozen_credentials()
    out = {"access_key": frozen.access_key, "secret_key": frozen.secret_key}
    if frozen.token:
        out["session_token"] = frozen.token
    return out


def filesystem(uri: str | os.PathLike, *, endpoint_url: str | None = None,
               region: str | None = None, access_key: str | None = None,
               secret_key: str | None = None, session_token: str | None = None,
               resolve_credentials: bool = True, connect_timeout: float = CONNECT_TIMEOUT_S,
               request_timeout: float = REQUEST_TIMEOUT_S,
               max_attempts: int = MAX_ATTEMPTS) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it for a local path or ``s3://bucket/prefix``.

    Args:
        uri: local path (``~`` expanded, made absolute; ``file://`` accepted) or S3 URI.
        endpoint_url: S3-compatible endpoint, e.g. ``http://127.0.0.1:9000`` (http => plain HTTP).
        region: S3 region; default from ``AWS_REGION``/``AWS_DEFAULT_REGION`` or the SDK.
        access_key: explicit key id (with ``secret_key``); default: the AWS credential chain.
        secret_key: explicit secret key.
        session_token: token for temporary credentials.
        resolve_credentials: resolve the chain here and embed it (see the module docstring).
        connect_timeout: seconds to wait for a TCP connection.
        request_timeout: seconds per request.
        max_attempts: tries per request, retries included.

    Returns:
        (filesystem, path): ``path`` is absolute locally, ``bucket/prefix`` on S3 (no slash at
        the end).
    """
    text = os.fspath(uri)
    if not is_s3(text):
        if "://" in text and not text.startswith("file://"):
            raise ValueError(f"unsupported URI {text!r}: expected a local path, file:// or s3://")
        local = Path(text[len("file://"):] if text.startswith("file://") else text)
        return pafs.LocalFileSystem(), str(local.expanduser().resolve())
    bucket, prefix = _split_s3(text)
    kwargs: dict[str, Any] = {
        "connect_timeout": float(connect_timeout), "request_timeout": float(request_timeout),
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=int(max_attempts)),
        **_credentials(access_key, secret_key, session_token, resolve_credentials),
    }
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    endpoint = resolve_endpoint(endpoint_url)
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"S3 endpoint {endpoint!r} must look like http(s)://host[:port]")
        kwargs["endpoint_override"] = parsed.netloc
        kwargs["scheme"] = parsed.scheme
    return pafs.S3FileSystem(**kwargs), posixpath.join(bucket, prefix).rstrip("/")


def boto3_client(uri_or_endpoint: str | None = None, *, region: str | None = None) -> Any:
    """A boto3 S3 client for the same endpoint `filesystem` would use (credentials: AWS chain).

    Args:
        uri_or_endpoint: an ``http(s)://`` endpoint, or an ``s3://`` URI / None to use the
            endpoint environment variables.
        region: region name; default from the environment (``us-east-1`` if unset).
    """
    import boto3

    endpoint = uri_or_endpoint if uri_or_endpoint and "://" in uri_or_endpoint \
        and not is_s3(uri_or_endpoint) else resolve_endpoint(None)
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") \
        or "us-east-1"
    return boto3.client("s3", endpoint_url=endpoint, region_name=region)


def _is_network_error(exc: BaseException) -> bool:
    return any(m.lower() in str(exc).lower() for m in _NETWORK_MARKERS)


@dataclass
class Store:
    """A dataset location: filesystem, root path and helpers with clear errors.

    Picklable (pyarrow filesystems are), so it can be sent to Ray tasks and actors.

    Attributes:
        uri: what the user gave (local path or s3 URI).
        fs: the pyarrow filesystem.
        root: the root path inside ``fs``.
        endpoint: the S3 endpoint URL (None for AWS or local).
    """

    uri: str
    fs: pafs.FileSystem
    root: str
    endpoint: str | None = None

    @classmethod
    def open(cls, uri: str | os.PathLike, *, check: bool = True,
             **options: Any) -> Store:
        """Open a location. ``options`` go to `filesystem`; ``check`` probes S3 reachability and
        the bucket once (quick; raises `ConnectionError` / `FileNotFoundError` with the fix)."""
        fs, root = filesystem(uri, **options)
        store = cls(os.fspath(uri), fs, root, resolve_endpoint(options.get("endpoint_url"))
                    if is_s3(uri) else None)
        if check and store.is_s3:
            store.check_bucket()
        return store

    @property
    def is_s3(self) -> bool:
        return isinstance(self.fs, pafs.S3FileSystem)

    @property
    def bucket(self) -> str | None:
        return self.root.split("/", 1)[0] if self.is_s3 else None

    def where(self) -> str:
        """How to name this location in messages (never credentials)."""
        return f"{self.uri} (endpoint {self.endpoint or 'AWS default'})" if self.is_s3 else self.uri

    def path(self, name: str = "") -> str:
        """Path of ``name`` (relative, ``/``-separated) inside the filesystem."""
        return posixpath.join(self.root, name) if name else self.root

    def url(self, name: str = "") -> str:
        """User-facing location of ``name`` (``s3://...`` or a local path)."""
        return f"s3://{self.path(name)}" if self.is_s3 else self.path(name)

    def _wrap(self, exc: OSError, what: str) -> OSError:
        if self.is_s3 and _is_network_error(exc):
            return ConnectionError(
                f"cannot reach S3 endpoint {self.endpoint or 'AWS default'} while {what}: {exc}. "
                "Check that the server is running and the endpoint URL (endpoint_url or "
                "AWS_ENDPOINT_URL, http:// vs https://, host and port) is right.")
        return exc

    def check_bucket(self) -> None:
        """Raise quickly if the endpoint is unreachable or the bucket does not exist."""
        bucket = self.bucket
        try:
            info = self.fs.get_file_info(bucket)
        except OSError as exc:
            raise self._wrap(exc, f"checking bucket {bucket!r}") from None
        if info.type == pafs.FileType.NotFound:
            ep = f" --endpoint-url {self.endpoint}" if self.endpoint else ""
            raise FileNotFoundError(
                f"S3 bucket {bucket!r} does not exist at {self.where()}; create it first, e.g. "
                f"`aws s3 mb s3://{bucket}{ep}` (or boto3 create_bucket), or fix the URI")

    def exists(self, name: str) -> bool:
        """Whether a file ``name`` exists."""
        return self.info(name).type == pafs.FileType.File

    def info(self, name: str) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(self.path(name))
        except OSError as exc:
            raise self._wrap(exc, f"looking up {self.url(name)}") from None

    def size(self, name: str) -> int | None:
        """Size in bytes, or None if absent."""
        info = self.info(name)
        return info.size if info.type == pafs.FileType.File else None

    def read_bytes(self, name: str) -> bytes:
        """Whole file contents. Raises FileNotFoundError naming the file if absent."""
        try:
            with self.fs.open_input_stream(self.path(name), buffer_size=READ_BUFFER) as f:
                return f.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.url(name)} does not exist") from None
        except OSError as exc:
            if "not exist" in str(exc) or "NOT_FOUND" in str(exc) or "NoSuchKey" in str(exc):
                raise FileNotFoundError(f"{self.url(name)} does not exist") from None
            raise self._wrap(exc, f"reading {self.url(name)}") from None

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write a file; atomic on local disks (temporary file + rename), PUT on S3."""
        target = self.path(name)
        try:
            if self.is_s3:
                with self.fs.open_output_stream(target) as f:
                    f.write(data)
                return
            parent = posixpath.dirname(target)
            self.fs.create_dir(parent, recursive=True)
            tmp = posixpath.join(parent, f".{posixpath.basename(target)}.{uuid.uuid4().hex}.tmp")
            try:
                with self.fs.open_output_stream(tmp) as f:
                    f.write(data)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as exc:
            if self.is_s3 and ("NO_SUCH_BUCKET" in str(exc) or "NoSuchBucket" in str(exc)):
                self.check_bucket()
            raise self._wrap(exc, f"writing {self.url(name)}") from None

    def delete(self, name: str) -> None:
        """Delete a file if it exists."""
        if self.exists(name):
            try:
                self.fs.delete_file(self.path(name))
            except OSError as exc:
                raise self._wrap(exc, f"deleting {self.url(name)}") from None

    def list(self, prefix: str = "", *, recursive: bool = True) -> dict[str, int]:
        """Files under ``prefix``: relative name -> size in bytes ({} if the folder is absent)."""
        base = self.path(prefix)
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=recursive,
                                                            allow_not_found=True))
        except OSError as exc:
            raise self._wrap(exc, f"listing {self.url(prefix)}") from None
        return {posixpath.relpath(i.path, self.root): int(i.size) for i in infos
                if i.type == pafs.FileType.File}
