"""Parquet shards: contents, manifest, verification, resume, storage errors, S3 round trip."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from react_data import layout, schema, shards, synthetic
from react_data.manifest import MANIFEST_FILE, PROGRESS_DIR, Manifest
from react_data.storage import Store


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> layout.ClipIndex:
    root = synthetic.generate(tmp_path_factory.mktemp("mars") / "mars", seed=3, sessions=2,
                              clips_per_session=3, min_frames=40, max_frames=70, video=False,
                              progress=False)
    return layout.scan(root)


@pytest.fixture(scope="module")
def written(index, tmp_path_factory) -> tuple[str, Manifest]:
    uri = str(tmp_path_factory.mktemp("shards") / "ds")
    return uri, shards.write(index, uri, rows_per_shard=4, progress=False)


def _frames(value: bytes, dim: int) -> np.ndarray:
    return np.frombuffer(value, "<f4").reshape(-1, dim)


def _flip_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_rows_hold_the_source_arrays_and_ids(index, written):
    uri, manifest = written
    rows = {}
    for entry in manifest.shards["train"]:
        for row in pq.read_table(os.path.join(uri, entry.file)).to_pylist():
            rows[row["dyad"]] = row
    assert len(rows) == len(index.split_dyads("train")) == manifest.rows("train")
    for dyad in index.split_dyads("train"):
        row = rows[dyad.key]
        n = row["n_frames"]
        assert n == dyad.speaker.n_frames and row["fps"] == pytest.approx(index.fps)
        np.testing.assert_array_equal(_frames(row["speaker_attr"], schema.ATTR_DIM),
                                      layout.load_attributes(dyad.speaker))
        np.testing.assert_array_equal(_frames(row["listener_coef"], schema.COEF_DIM),
                                      layout.load_coefficients(dyad.listener))
        assert _frames(row["speaker_audio"], schema.AUDIO_DIM).shape == (n, schema.AUDIO_DIM)
        assert row["listener_clip"] == dyad.listener.key
        assert manifest.persons[row["listener_person_idx"]] == dyad.listener.person


def test_manifest_counts_checksums_and_train_only_stats(index, written):
    uri, manifest = written
    again = shards.read_manifest(uri)
    assert again == manifest and Manifest.from_json(manifest.to_json()) == manifest
    for split in schema.SPLITS:
        assert manifest.rows(split) == len(index.split_dyads(split))
    assert manifest.persons == index.persons
    coef = np.concatenate([np.concatenate([layout.load_coefficients(d.speaker),
                                           layout.load_coefficients(d.listener)])
                           for d in index.split_dyads("train")])
    mean, std = manifest.mean_std("coef")
    np.testing.assert_allclose(mean, coef.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(std, coef.std(axis=0), atol=1e-5)
    assert manifest.stats["coef"]["count"] == len(coef)  # no val/test frames in the stats


def test_protocol_table_has_each_sessions_targets_and_ten_gt_per_test_input(index, written):
    uri, manifest = written
    proto = shards.read_protocol(uri)
    for split, session in index.appropriate:
        rec = [a for a in proto["appropriate"] if (a["split"], a["session"]) == (split, session)]
        assert rec[0]["targets"] == index.appropriate[(split, session)]
    gts = proto["gt_sets"]["test"]
    assert gts == index.test_gt_sets("test", k=10, seed=manifest.gt_seed)
    assert all(len(v) == 10 for v in gts.values())


def test_verify_names_a_missing_truncated_or_corrupted_shard(index, tmp_path):
    uri = str(tmp_path / "ds")
    manifest = shards.write(index, uri, rows_per_shard=4, progress=False)
    assert shards.verify(uri) == manifest
    name = manifest.shards["val"][0].file
    path = tmp_path / "ds" / name
    good = path.read_bytes()
    _flip_byte(path, len(good) // 2)
    with pytest.raises(shards.CorruptShardError, match=rf"{name}.*sha256.*prepare"):
        shards.verify(uri)
    path.write_bytes(good[:-100])
    with pytest.raises(shards.CorruptShardError, match=rf"{name} has {len(good) - 100} bytes"):
        shards.verify(uri, checksums=False)
    path.unlink()
    with pytest.raises(FileNotFoundError, match=rf"{name} is listed in the manifest but missing"):
        shards.verify(uri)


def test_interrupted_write_leaves_no_manifest_and_rerun_writes_only_missing_shards(
        index, tmp_path, monkeypatch):
    uri = str(tmp_path / "ds")
    real_build = shards._build_shard
    calls = []

    def crash_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")
        calls.append(1)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(shards, "_build_shard", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        shards.write(index, uri, rows_per_shard=4, progress=False)
    assert not (tmp_path / "ds" / MANIFEST_FILE).exists()
    with pytest.raises(FileNotFoundError, match="interrupted.*prepare"):
        shards.read_manifest(uri)
    monkeypatch.setattr(shards, "_build_shard", real_build)
    manifest = shards.write(index, uri, rows_per_shard=4, progress=False)
    total = sum(len(v) for v in manifest.shards.values())
    assert (manifest.created["shards_reused"], manifest.created["shards_written"]) == \
        (2, total - 2)
    fresh = shards.write(index, str(tmp_path / "fresh"), rows_per_shard=4, progress=False)
    assert [e.sha256 for e in manifest.files()] == [e.sha256 for e in fresh.files()]
    assert manifest.stats == fresh.stats
    # a damaged complete dataset is repaired by rewriting only the damaged shard
    _flip_byte(tmp_path / "ds" / manifest.shards["test"][0].file, 10)
    repaired = shards.write(index, uri, rows_per_shard=4, progress=False)
    assert repaired.created["shards_written"] == 1
    assert shards.verify(uri).fingerprint == manifest.fingerprint
    records = sorted((tmp_path / "ds" / PROGRESS_DIR).rglob("*.json"))
    assert len(records) == total and json.loads(records[0].read_text())["sha256"]


def test_a_different_dataset_is_not_overwritten_without_overwrite(index, written):
    uri, _ = written
    with pytest.raises(FileExistsError, match="overwrite"):
        shards.write(index, uri, rows_per_shard=3, progress=False)


def test_a_directory_without_manifest_is_refused_with_the_fix(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "part-00000.parquet").write_bytes(b"PAR1")
    with pytest.raises(FileNotFoundError, match=r"no manifest.json.*not a complete.*prepare"):
        shards.read_manifest(str(tmp_path))


@pytest.mark.integration
def test_shards_round_trip_through_s3(index, written, s3_server, s3_uri):
    _, local = written
    opts = s3_server.storage_options
    manifest = shards.write(index, s3_uri, rows_per_shard=4, progress=False,
                            storage_options=opts)
    assert [e.sha256 for e in manifest.files()] == [e.sha256 for e in local.files()]
    assert shards.verify(s3_uri, storage_options=opts) == manifest
    key = f"{s3_uri.split('/', 3)[3]}/{manifest.shards['train'][0].file}"
    body = s3_server.client().get_object(Bucket=s3_server.bucket, Key=key)["Body"].read()
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=key, Body=body[:-1])
    with pytest.raises(shards.CorruptShardError, match=manifest.shards["train"][0].file):
        shards.verify(s3_uri, storage_options=opts)


@pytest.mark.integration
def test_missing_bucket_error_names_it_and_how_to_create_it(s3_server):
    with pytest.raises(FileNotFoundError, match=r"bucket 'no-such-bucket'.*aws s3 mb"):
        Store.open("s3://no-such-bucket/data", **s3_server.storage_options)


def test_unreachable_endpoint_fails_fast_naming_it_and_never_the_secret():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    t0 = time.monotonic()
    with pytest.raises(ConnectionError) as err:
        Store.open("s3://bucket/data", endpoint_url=endpoint, access_key="AKIDEXAMPLE",
                   secret_key="never-print-me")
    assert time.monotonic() - t0 < 10
    assert endpoint in str(err.value) and "AWS_ENDPOINT_URL" in str(err.value)
    assert "never-print-me" not in str(err.value)


def test_endpoint_comes_from_the_environment_and_http_selects_plain_http(monkeypatch):
    from react_data.storage import filesystem

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    fs, path = filesystem("s3://bucket/a/b/", access_key="k", secret_key="s")
    assert path == "bucket/a/b"
    args = fs.__reduce__()[1][0]
    assert (args["endpoint_override"], args["scheme"]) == ("127.0.0.1:9", "http")


def test_prepare_builds_the_synthetic_dataset_once_and_reruns_as_a_no_op(tmp_path, capsys):
    from react_data import prepare

    kwargs = {"sessions": 2, "clips_per_session": 2, "min_frames": 30, "max_frames": 40}
    uri = str(tmp_path / "ds")
    manifest = prepare.prepare(uri, synthetic_kwargs=kwargs)
    out = capsys.readouterr().out
    assert uri in out and "train" in out and "MB" in out
    assert (tmp_path / "ds.work" / "mars" / "train").is_dir()
    assert shards.verify(uri).fingerprint == manifest.fingerprint
    again = prepare.prepare(uri, synthetic_kwargs=kwargs, progress=False)
    assert again.created["shards_written"] == 0 and again.fingerprint == manifest.fingerprint
    assert prepare.main(["--out", uri, "--root", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "missing" in capsys.readouterr().err


@pytest.mark.integration
def test_prepare_cli_writes_to_s3(s3_server, s3_uri, tmp_path):
    from react_data import prepare

    argv = ["--out", s3_uri, "--endpoint-url", s3_server.endpoint, "--sessions", "2", "--clips",
            "2", "--frames", "30", "--work-dir", str(tmp_path / "work"), "--quiet"]
    assert prepare.main(argv) == 0
    manifest = shards.verify(s3_uri, storage_options=s3_server.storage_options)
    assert manifest.rows("train") == 4 and manifest.frames("train") == 4 * 30


def test_local_writes_are_atomic_and_missing_files_are_named(tmp_path):
    store = Store.open(str(tmp_path / "root"))
    store.write_bytes("a/b.bin", b"one")
    store.write_bytes("a/b.bin", b"two")
    assert store.read_bytes("a/b.bin") == b"two" and store.list() == {"a/b.bin": 3}
    assert sorted(p.name for p in (tmp_path / "root" / "a").iterdir()) == ["b.bin"]  # no temps
    with pytest.raises(FileNotFoundError, match=r"root/a/missing.bin does not exist"):
        store.read_bytes("a/missing.bin")
