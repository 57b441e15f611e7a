"""A real S3-compatible server process for tests and benchmarks: ``moto_server`` on 127.0.0.1.

It runs as a separate process (never an in-process mock), on a free port, and is stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# moto accepts any credentials; these only have to look like some
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "reactune-test", "AWS_SECRET_ACCESS_KEY": "reactune-test",
                     "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the parent dies (a killed pytest leaks nothing)."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def moto_server_executable() -> str:
    """The ``moto_server`` console script of this interpreter's environment."""
    exe = Path(sys.executable).parent / "moto_server"
    if exe.is_file():
        return str(exe)
    found = shutil.which("moto_server")
    if found:
        return found
    raise FileNotFoundError(f"moto_server not found next to {sys.executable} or on PATH; "
                            "install the dev extras: pip install -e '.[dev]' (moto[server])")


@dataclass
class S3Server:
    """A running moto_server process.

    Attributes:
        endpoint: ``http://127.0.0.1:<port>``.
        process: the server process (stop it with `stop`).
        log: its stdout/stderr file.
    """

    endpoint: str
    process: subprocess.Popen
    log: Path
    buckets: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def bucket(self) -> str:
        """The first bucket created (tests' default)."""
        if not self.buckets:
            raise RuntimeError("no bucket created yet; call create_bucket(name)")
        return self.buckets[0]

    @property
    def storage_options(self) -> dict[str, str]:
        """`react_data.storage.filesystem` options that point at this server."""
        return {"endpoint_url": self.endpoint}

    def client(self):
        """A boto3 client for this server (dummy credentials)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return name

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server process (SIGTERM, then SIGKILL) by its PID."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)


def start_s3_server(*, host: str = "127.0.0.1", port: int | None = None,
                    timeout: float = 30.0) -> S3Server:
    """Start ``moto_server -H host -p port`` and wait until it answers HTTP.

    Raises:
        RuntimeError: the process exited or did not answer within ``timeout`` (log attached).
    """
    port = port or _free_port(host)
    log = Path(tempfile.mkstemp(prefix="moto_server-", suffix=".log")[1])
    env = {**os.environ, **DUMMY_CREDENTIALS}
    with log.open("wb") as out:
        proc = subprocess.Popen([moto_server_executable(), "-H", host, "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    server = S3Server(f"http://{host}:{port}", proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(server.endpoint + "/", timeout=1.0):
                return server
        except urllib.error.HTTPError:
            return server  # it answers, even if with an error status
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"moto_server on {server.endpoint} did not start within {timeout} s "
                       f"(exit code {proc.poll()}); log:\n{log.read_text()[-2000:]}")
