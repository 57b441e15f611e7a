"""Streaming shards into ReactionBatches (Ray Data), evaluation sets and train statistics."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from react_data import layout, schema, shards, synthetic
from react_data.evalset import load_eval_set, train_stats
from react_data.manifest import Manifest

WINDOW, CONTEXT = 8, 12


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[str, Manifest, layout.ClipIndex]:
    root = synthetic.generate(tmp_path_factory.mktemp("mars") / "mars", seed=5, sessions=2,
                              clips_per_session=3, min_frames=40, max_frames=70, video=False,
                              progress=False)
    index = layout.scan(root)
    uri = str(tmp_path_factory.mktemp("shards") / "ds")
    return uri, shards.write(index, uri, rows_per_shard=4, progress=False), index


@pytest.fixture(scope="module")
def quiet_ray_data():
    import ray.data

    ctx = ray.data.DataContext.get_current()
    before = ctx.enable_progress_bars
    ctx.enable_progress_bars = False
    yield
    ctx.enable_progress_bars = before


def _frames(value: bytes, dim: int) -> np.ndarray:
    return np.frombuffer(value, "<f4").reshape(-1, dim)


def _table(uri: str, manifest: Manifest, split: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(os.path.join(uri, e.file))
                             for e in manifest.shards[split]])


def _decoder(task: str, **kw):
    from react_data.stream import _Decoder

    args = {"max_seq_len": None, "window_size": WINDOW, "context": CONTEXT,
            "windows_per_clip": None, "seed": 0, "random": False, "norm": {}} | kw
    return _Decoder(task, **args)


def test_online_items_end_at_their_window_and_cover_each_target_frame_once(dataset):
    uri, manifest, index = dataset
    rows = _table(uri, manifest, "train")
    items = _decoder("online")(rows).to_pylist()
    by_key = {r["dyad"]: r for r in rows.to_pylist()}
    targets = {k: np.zeros(r["n_frames"], int) for k, r in by_key.items()}
    for it in items:
        row = by_key[it["dyad"]]
        n, start = it["n"], it["start"]
        t0 = start + CONTEXT  # first target frame
        assert it["context"] == CONTEXT and CONTEXT < n <= CONTEXT + WINDOW
        assert start + n <= row["n_frames"] and start + n == min(t0 + WINDOW, row["n_frames"])
        src = _frames(row["speaker_attr"], schema.ATTR_DIM)
        np.testing.assert_array_equal(_frames(it["speaker_attr"], schema.ATTR_DIM),
                                      src[start:start + n])  # nothing after the window end
        targets[it["dyad"]][t0:start + n] += 1
    for key, hits in targets.items():
        assert (hits[:CONTEXT] == 0).all() and (hits[CONTEXT:] == 1).all(), key


def test_offline_crops_start_at_zero_unless_shuffled_then_vary_with_the_seed(dataset):
    uri, manifest, _ = dataset
    rows = _table(uri, manifest, "train")
    fixed = _decoder("offline", max_seq_len=30)(rows).to_pylist()
    assert all(it["start"] == 0 and it["n"] == 30 for it in fixed)

    def starts(seed: int) -> dict[str, int]:
        items = _decoder("offline", max_seq_len=30, seed=seed, random=True)(rows).to_pylist()
        return {it["dyad"]: it["start"] for it in items}

    a, b = starts(1), starts(2)
    assert a == starts(1) and a != b
    n = dict(zip(rows.column("dyad").to_pylist(), rows.column("n_frames").to_pylist(),
                 strict=True))
    assert all(0 <= s <= n[k] - 30 for k, s in a.items())


@pytest.mark.integration
def test_offline_batches_are_padded_masked_and_normalised_with_train_stats(
        dataset, ray_session, quiet_ray_data):
    from react_data import stream

    uri, manifest, _ = dataset
    batches = list(stream.iter_batches(stream.load(uri, "val"), batch_size=4))
    rows = {r["dyad"]: r for r in _table(uri, manifest, "val").to_pylist()}
    assert sum(b.batch_size for b in batches) == len(rows)
    mean, std = manifest.mean_std("coef")
    by_clip = {r["clip"]: r for r in rows.values()}
    for b in batches:
        assert b.context_frames == 0 and b.speaker_audio.shape[-1] == schema.AUDIO_DIM
        for i, clip in enumerate(b.clip):
            row = by_clip[clip]
            n = row["n_frames"]
            assert b.mask[i].sum() == n and b.mask[i, :n].all()
            raw = _frames(row["speaker_coef"], schema.COEF_DIM)
            np.testing.assert_allclose(b.speaker_coef[i, :n].numpy() * std + mean, raw,
                                       atol=1e-4)
            np.testing.assert_array_equal(b.listener_attr[i, :n].numpy(),
                                          _frames(row["listener_attr"], schema.ATTR_DIM))
            assert b.listener_idx[i] == row["listener_person_idx"]


@pytest.mark.integration
def test_online_batches_carry_context_and_exclude_it_from_the_loss(
        dataset, ray_session, quiet_ray_data):
    from react_data import stream

    uri, _, _ = dataset
    ds = stream.load(uri, "train", task="online", window_size=WINDOW, context_frames=CONTEXT,
                     shuffle=True, seed=3)
    batch = next(iter(stream.iter_batches(ds, batch_size=8, drop_last=True)))
    assert batch.batch_size == 8 and batch.context_frames == CONTEXT
    assert batch.num_frames <= CONTEXT + WINDOW
    assert not batch.loss_mask[:, :CONTEXT].any() and batch.loss_mask[:, CONTEXT].all()


@pytest.mark.integration
def test_ray_task_streams_the_same_items_from_s3_as_from_disk(
        dataset, ray_session, quiet_ray_data, s3_server, s3_uri):
    import ray

    uri, _, index = dataset
    shards.write(index, s3_uri, rows_per_shard=4, progress=False,
                 storage_options=s3_server.storage_options)

    @ray.remote(num_cpus=0)
    def consume(u: str, options: dict | None) -> dict[str, float]:
        from react_data import stream

        ds = stream.load(u, "test", task="online", window_size=WINDOW, context_frames=CONTEXT,
                         storage_options=options)
        out = {}
        for b in stream.iter_batches(ds, batch_size=5):
            for i, clip in enumerate(b.clip):
                key = f"{clip}/{int(b.mask[i].sum())}/{float(b.speaker_attr[i].sum()):.3f}"
                out[key] = out.get(key, 0) + 1
        return out

    from_s3 = ray.get(consume.remote(s3_uri, s3_server.storage_options), timeout=120)
    assert from_s3 == ray.get(consume.remote(uri, None), timeout=120) and from_s3


@pytest.mark.integration
def test_load_refuses_a_corrupt_shard_naming_it(dataset, tmp_path, ray_session, quiet_ray_data):
    from react_data import stream

    uri, manifest, _ = dataset
    copy = tmp_path / "ds"
    shutil.copytree(uri, copy)
    name = manifest.shards["train"][-1].file
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 3] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(shards.CorruptShardError, match=name):
        stream.load(str(copy), "train", verify="checksum")  # hashed up front
    ds = stream.load(str(copy), "train")  # sizes match: the hash is checked while reading
    with pytest.raises(shards.CorruptShardError, match=rf"{name} does not match its sha256"):
        list(stream.iter_batches(ds, batch_size=4))
    (copy / name).write_bytes(bytes(data[:-10]))
    with pytest.raises(shards.CorruptShardError, match=rf"{name} has \d+ bytes"):
        stream.load(str(copy), "train")
    os.remove(copy / "manifest.json")
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        stream.load(str(copy), "train")


def test_eval_set_pairs_each_speaker_with_its_sessions_listeners_partner_first(dataset):
    uri, _, index = dataset
    ev = load_eval_set(uri, "val")
    n = len(index.split_dyads("val"))
    t = min(d.speaker.n_frames for d in index.split_dyads("val"))
    assert ev.speaker.shape == ev.listener.shape == (n, t, schema.ATTR_DIM)
    assert ev.batch.speaker_attr.shape == (n, t, schema.ATTR_DIM) and ev.batch.mask.all()
    for i, key in enumerate(ev.keys):
        dyad = next(d for d in index.split_dyads("val") if d.key == key)
        assert ev.appropriate_keys[i][0] == dyad.listener.key
        assert sorted(ev.appropriate_keys[i]) == sorted(c.key for c in index.appropriate_for(dyad))
        assert ev.appropriate[i].shape == (len(index.appropriate_for(dyad)), t, schema.ATTR_DIM)
        np.testing.assert_array_equal(ev.appropriate[i][0], ev.listener[i])
        np.testing.assert_array_equal(ev.listener[i], layout.load_attributes(dyad.listener)[:t])
        np.testing.assert_array_equal(ev.speaker[i], layout.load_attributes(dyad.speaker)[:t])


def test_test10_eval_set_has_ten_gt_partner_first_and_checks_lengths(dataset):
    uri, manifest, index = dataset
    ev = load_eval_set(uri, "test", protocol="test10", num_frames=20, max_items=3)
    assert len(ev) == 3 and ev.num_frames == 20
    gts = index.test_gt_sets("test", k=10, seed=manifest.gt_seed)
    for i, key in enumerate(ev.keys):
        assert ev.appropriate_keys[i] == gts[key] and ev.appropriate[i].shape == (10, 20, 25)
        np.testing.assert_array_equal(ev.appropriate[i][0], ev.listener[i])
    with pytest.raises(ValueError, match="num_frames must be in"):
        load_eval_set(uri, "test", num_frames=10_000)
    with pytest.raises(ValueError, match="seed"):
        load_eval_set(uri, "test", protocol="test10", seed=7)


def test_train_stats_give_the_mean_train_listener_reaction(dataset):
    uri, _, index = dataset
    attrs = np.concatenate([layout.load_attributes(d.listener)
                            for d in index.split_dyads("train")])
    stats = train_stats(uri)
    np.testing.assert_allclose(stats["listener_attr_mean"], attrs.mean(axis=0), atol=1e-5)
    assert stats["coef_std"].shape == (schema.COEF_DIM,)


def test_bidirectional_eval_sets_use_the_reverse_targets_of_the_session(dataset, tmp_path):
    _, _, index = dataset
    both = layout.scan(index.root, bidirectional=True)
    uri = str(tmp_path / "both")
    shards.write(both, uri, splits=["train", "val"], progress=False)
    ev = load_eval_set(uri, "val")
    assert len(ev) == 2 * len(index.split_dyads("val"))
    for i, key in enumerate(ev.keys):
        role = "speaker" if key.endswith("listener->speaker") else "listener"
        assert all(k.split("/")[1] == role for k in ev.appropriate_keys[i])
        np.testing.assert_array_equal(ev.appropriate[i][0], ev.listener[i])
