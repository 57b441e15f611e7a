"""Prepare a dataset: (synthetic) MARS tree -> scan -> Parquet shards at a local path or S3.

``python -m react_data.prepare --out DIR_OR_S3_URI [--root MARS]``. Without ``--root`` the
embedded synthetic MARS set is generated first into a work directory: ``<out>.work/mars`` next
to a local ``--out`` (kept and reused while its settings match, so re-runs resume), or a
temporary directory for S3 (removed afterwards; pass ``work_dir`` to keep it and resume).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from react_data import shards
from react_data.manifest import Manifest
from react_data.storage import is_s3

__all__ = ["main", "prepare"]

SYNTHETIC_DEFAULTS: dict[str, Any] = {"video": False}  # shards never read video: skip the slow part
_SETTINGS_FILE = "synthetic.json"


def _synthetic_root(work: Path, seed: int, kwargs: dict[str, Any], progress: bool) -> Path:
    """Generate (or reuse, when made with the same settings) the synthetic tree under ``work``."""
    from react_data import synthetic

    settings = {"seed": seed, **SYNTHETIC_DEFAULTS, **kwargs}
    root, marker = work / "mars", work / _SETTINGS_FILE
    if marker.is_file() and root.is_dir():
        try:
            if json.loads(marker.read_text()) == settings:
                return root
        except ValueError:
            pass  # unreadable marker: regenerate
    marker.unlink(missing_ok=True)
    synthetic.generate(root, progress=progress, overwrite=True, **settings)
    marker.write_text(json.dumps(settings, sort_keys=True) + "\n")
    return root


def prepare(uri: str, *, root: str | Path | None = None, seed: int = 0,
            synthetic_kwargs: dict[str, Any] | None = None, bidirectional: bool = False,
            progress: bool = True, rows_per_shard: int = shards.ROWS_PER_SHARD,
            overwrite: bool = False, work_dir: str | Path | None = None,
            storage_options: dict[str, Any] | None = None) -> Manifest:
    """Build the shards of a MARS tree (the synthetic one when ``root`` is None) at ``uri``.

    Args:
        uri: output: local directory or ``s3://bucket/prefix``.
        root: an existing MARS tree; None generates the synthetic set.
        seed: synthetic generator seed.
        synthetic_kwargs: more `react_data.synthetic.generate` arguments (sessions, frames,
            clips_per_session, video, ...).
        bidirectional: also use listener->speaker dyads.
        progress: progress bars and a summary on stdout.
        rows_per_shard: dyads per shard.
        overwrite: replace a different complete dataset at ``uri``.
        work_dir: where the synthetic tree goes (see the module docstring).
        storage_options: `react_data.storage.filesystem` options (endpoint_url, region, ...).

    Returns:
        The dataset's `Manifest`.
    """
    from react_data import layout

    tmp = None
    try:
        if root is None:
            if work_dir is None and is_s3(uri):
                work_dir = tmp = Path(tempfile.mkdtemp(prefix="reactune-mars-"))
            elif work_dir is None:
                out = Path(uri).expanduser().resolve()
                work_dir = out.parent / f"{out.name}.work"
            root = _synthetic_root(Path(work_dir), seed, dict(synthetic_kwargs or {}), progress)
        index = layout.scan(root, bidirectional=bidirectional)
        manifest = shards.write(index, uri, rows_per_shard=rows_per_shard, progress=progress,
                                overwrite=overwrite, storage_options=storage_options)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        c = manifest.created
        total = sum(len(v) for v in manifest.shards.values())
        print(f"dataset at {uri} (from {c.get('source')}): {total} shards, "
              f"{c.get('shards_written', 0)} written, {c.get('shards_reused', 0)} reused, "
              f"{manifest.nbytes() / 1e6:.1f} MB\n{manifest.summary()}")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m react_data.prepare",
                                description="Write MARS Parquet shards (local dir or s3://).")
    p.add_argument("--out", required=True, help="output directory or s3://bucket/prefix")
    p.add_argument("--root", type=Path, default=None,
                   help="MARS data root (default: generate the synthetic set)")
    p.add_argument("--seed", type=int, default=0, help="synthetic generator seed")
    p.add_argument("--sessions", type=int, default=None, help="synthetic: sessions per split")
    p.add_argument("--clips", type=int, default=None, help="synthetic: dyads per session")
    p.add_argument("--frames", type=int, default=None, help="synthetic: fixed clip length")
    p.add_argument("--video", action="store_true", help="synthetic: also write face videos")
    p.add_argument("--work-dir", type=Path, default=None, help="where the synthetic tree goes")
    p.add_argument("--bidirectional", action="store_true", help="add listener->speaker dyads")
    p.add_argument("--rows-per-shard", type=int, default=shards.ROWS_PER_SHARD)
    p.add_argument("--overwrite", action="store_true", help="replace a different dataset")
    p.add_argument("--endpoint-url", default=None, help="S3-compatible endpoint URL")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    a = p.parse_args(argv)
    kwargs = {k: v for k, v in (("sessions", a.sessions), ("clips_per_session", a.clips),
                                ("frames", a.frames)) if v is not None}
    if a.video:
        kwargs["video"] = True
    try:
        prepare(a.out, root=a.root, seed=a.seed, synthetic_kwargs=kwargs,
                bidirectional=a.bidirectional, progress=not a.quiet,
                rows_per_shard=a.rows_per_shard, overwrite=a.overwrite, work_dir=a.work_dir,
                storage_options={"endpoint_url": a.endpoint_url} if a.endpoint_url else None)
    except (ValueError, FileNotFoundError, FileExistsError, ConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
