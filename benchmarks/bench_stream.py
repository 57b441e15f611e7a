"""Streaming throughput from S3: raw boto3 GETs vs `react_data.stream` into ReactionBatches.

Starts its own S3-compatible server (``moto_server``, a separate process on 127.0.0.1), writes
synthetic MARS shards to it, then reads the train split's shards

(a) raw: boto3 ``get_object`` of every shard, whole bodies (MB/s of Parquet bytes); only the
    train split is generated;
(b) stream: ``stream.load`` + ``stream.iter_batches`` into torch `ReactionBatch`es (MB/s of the
    same Parquet bytes consumed, wall clock from ``load`` to the last batch);

and prints both and their ratio. Each is measured ``--repeats`` times after one warm-up pass
(Ray worker start-up and the first S3 connections are excluded); the median is reported.

    python benchmarks/bench_stream.py --sessions 16 --clips 12 --frames 750   # ~125 MB
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _raw_get(client, bucket: str, keys: list[str]) -> tuple[int, float]:
    t0 = time.perf_counter()
    total = 0
    for key in keys:
        total += len(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    return total, time.perf_counter() - t0


def _stream(uri: str, options: dict, args: argparse.Namespace) -> tuple[int, int, float]:
    from react_data import stream

    t0 = time.perf_counter()
    ds = stream.load(uri, "train", task=args.task, verify=args.verify, storage_options=options,
                     max_seq_len=args.max_seq_len)
    items = frames = 0
    for batch in stream.iter_batches(ds, batch_size=args.batch_size):
        items += batch.batch_size
        frames += int(batch.mask.sum())
    return items, frames, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=16, help="synthetic sessions (train split)")
    p.add_argument("--clips", type=int, default=12, help="synthetic dyads per session")
    p.add_argument("--frames", type=int, default=750, help="frames per clip")
    p.add_argument("--rows-per-shard", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--task", choices=("offline", "online"), default="offline")
    p.add_argument("--max-seq-len", type=int, default=None)
    p.add_argument("--verify", default="stream", choices=("stream", "size", "checksum", "none"),
                   help="stream.load's verify: 'stream' (default, True) = sizes + sha256 of "
                        "each shard as it is read; 'checksum' hashes up front (reads twice)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", type=Path, default=None, help="work dir (default: a temp dir)")
    args = p.parse_args(argv)
    args.verify = {"none": False, "stream": True}.get(args.verify, args.verify)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.s3server
    import os

    import ray

    from react_data import layout, shards, storage, synthetic
    from tests.s3server import DUMMY_CREDENTIALS, start_s3_server

    os.environ.update(DUMMY_CREDENTIALS)  # this script's own process: the test server's keys
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-stream-"))
    server = start_s3_server()
    try:
        bucket = server.create_bucket("bench")
        uri, options = f"s3://{bucket}/mars", server.storage_options
        t0 = time.perf_counter()
        root = synthetic.generate(work / "mars", sessions=args.sessions,
                                  clips_per_session=args.clips, frames=args.frames, video=False,
                                  splits=("train",), progress=False, overwrite=True)
        index = layout.scan(root)
        t1 = time.perf_counter()
        manifest = shards.write(index, uri, rows_per_shard=args.rows_per_shard, progress=False,
                                storage_options=options)
        t2 = time.perf_counter()
        train_bytes = manifest.nbytes("train")
        print(f"synthetic MARS: {len(index.dyads)} dyads x {args.frames} frames "
              f"({t1 - t0:.1f} s); shards to {uri}: {manifest.nbytes() / 1e6:.1f} MB in "
              f"{t2 - t1:.1f} s; train split: {len(manifest.shards['train'])} shards, "
              f"{manifest.rows('train')} dyads, {train_bytes / 1e6:.1f} MB")

        client = storage.boto3_client(server.endpoint)
        keys = [f"mars/{e.file}" for e in manifest.shards["train"]]
        _raw_get(client, bucket, keys)  # warm-up
        raw = [_raw_get(client, bucket, keys) for _ in range(args.repeats)]
        assert all(n == train_bytes for n, _ in raw)
        raw_mbs = statistics.median(n / t / 1e6 for n, t in raw)

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        _stream(uri, options, args)  # warm-up: Ray workers, imports
        runs = [_stream(uri, options, args) for _ in range(args.repeats)]
        items, frames = runs[0][:2]
        stream_mbs = statistics.median(train_bytes / t / 1e6 for *_, t in runs)
        fps = statistics.median(f / t for _, f, t in runs)
        print(f"(a) raw boto3 GET          : {raw_mbs:8.1f} MB/s "
              f"(runs: {', '.join(f'{n / t / 1e6:.1f}' for n, t in raw)})")
        print(f"(b) stream -> ReactionBatch: {stream_mbs:8.1f} MB/s "
              f"(runs: {', '.join(f'{train_bytes / t / 1e6:.1f}' for *_, t in runs)}; "
              f"{items} items, {fps:,.0f} frames/s, task={args.task}, "
              f"verify={args.verify}, batch {args.batch_size})")
        print(f"ratio stream / raw         : {stream_mbs / raw_mbs:8.2f} (target >= 0.7)")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
              "(other processes share the CPUs with moto_server, Ray and this driver)")
    finally:
        if ray.is_initialized():
            ray.shutdown()
        server.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
