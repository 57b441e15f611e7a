"""Scanning, pairing and indexing a good MARS tree (malformed trees: test_layout_errors.py)."""

from __future__ import annotations

import json
import pickle
import wave

import numpy as np
import pytest

from react_data import schema
from react_data.layout import (
    DIRECTIONS,
    LayoutError,
    load_attributes,
    load_audio,
    load_coefficients,
    scan,
)
from tests.react_data._trees import clip_file, copy_tree, sibling, tiny_tree, write_wav


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return tiny_tree(tmp_path_factory.mktemp("layout") / "mars")


@pytest.fixture
def tree(pristine, tmp_path):
    """A private copy of the tiny tree that a test may damage."""
    return copy_tree(pristine, tmp_path / "mars")


def test_scan_counts_pairs_and_indexes_a_good_tree(pristine):
    index = scan(pristine)
    assert len(index.dyads) == 3 * 2 * 2 and len(index.clips) == 2 * len(index.dyads)
    assert index.modalities == ("facial-attributes", "coefficients", "audio")
    assert index.fps == 25.0 and all(c.fps == 25.0 for c in index.clips)
    for d in index.dyads:
        assert d.direction == DIRECTIONS[0]
        assert (d.speaker.role, d.listener.role) == ("speaker", "listener")
        assert d.speaker.stem == d.listener.stem == d.stem
        assert d.speaker.session == d.listener.session == d.session
        assert d.speaker.split == d.listener.split == d.split
        assert d.key == f"{d.split}/session{d.session}/{d.stem}/speaker->listener"
        assert index.clip(d.listener.key) is d.listener
        assert set(d.speaker.files) == {"facial-attributes", "coefficients", "audio"}
    assert [d.split for d in index.dyads] == sorted((d.split for d in index.dyads),
                                                     key=schema.SPLITS.index)
    assert len(index.split_dyads("val")) == 4
    with pytest.raises(ValueError, match="unknown split"):
        index.split_dyads("dev")
    with pytest.raises(KeyError, match="no clip"):
        index.clip("train/listener/session0/nope")


def test_appropriate_sets_hold_every_same_session_listener(pristine):
    index = scan(pristine)
    assert len(index.appropriate) == 3 * 2
    for (split, session), keys in index.appropriate.items():
        assert len(keys) == 2
        assert all(index.clip(k).role == "listener" and index.clip(k).session == session
                   and index.clip(k).split == split for k in keys)
    for d in index.dyads:
        app = index.appropriate_for(d)
        assert d.listener in app and len(app) == 2
        assert {c.key for c in app} == set(index.appropriate[(d.split, d.session)])


def test_person_ids_come_from_persons_csv_and_index_the_listeners(pristine, tree):
    index = scan(pristine)
    assert len(index.persons) == 3 * 2 and index.persons == sorted(index.persons)
    for d in index.dyads:
        assert index.persons[index.person_index(d.listener.person)] == d.listener.person
        assert d.speaker.person != d.listener.person
    # a listener person recurs across the sessions of its split
    per_person = {}
    for d in index.dyads:
        per_person.setdefault(d.listener.person, set()).add(d.session)
    assert all(len(s) == 2 for s in per_person.values())
    with pytest.raises(KeyError, match="unknown person"):
        index.person_index("nobody")
    (tree / "persons.csv").unlink()
    fallback = scan(tree)
    assert all(c.person == f"{c.role}:{c.stem}" for c in fallback.clips)
    assert len(fallback.persons) == len(fallback.dyads)


def test_gt_sets_put_the_partner_first_and_are_seeded(pristine, tmp_path):
    index = scan(pristine)
    gts = index.test_gt_sets("test", k=10, seed=1234)
    assert set(gts) == {d.key for d in index.split_dyads("test")}
    for d in index.split_dyads("test"):
        keys = gts[d.key]
        assert len(keys) == 10 and keys[0] == d.listener.key
        # one other listener in the session: 9 draws with replacement from it
        assert set(keys[1:]) == {c.key for c in index.appropriate_for(d)} - {d.listener.key}
    assert scan(pristine).test_gt_sets("test", k=10, seed=1234) == gts
    assert index.test_gt_sets("test", k=1) == {k: v[:1] for k, v in gts.items()}
    big = scan(tiny_tree(tmp_path / "big", clips_per_session=12, splits=("test",), audio=False))
    gts_big = big.test_gt_sets(k=10, seed=1)
    for d in big.split_dyads("test"):
        rest = gts_big[d.key][1:]
        assert len(set(rest)) == 9 and d.listener.key not in rest  # sampled without replacement
    assert big.test_gt_sets(k=10, seed=2) != gts_big
    lone = scan(tiny_tree(tmp_path / "lone", clips_per_session=1, splits=("test",)))
    for d in lone.split_dyads("test"):
        assert lone.test_gt_sets()[d.key] == [d.listener.key] * 10
    with pytest.raises(ValueError, match="positive int"):
        index.test_gt_sets(k=0)


def test_bidirectional_doubles_the_dyads_with_swapped_roles(pristine):
    index = scan(pristine, bidirectional=True)
    assert len(index.dyads) == 2 * 12
    rev = [d for d in index.dyads if d.direction == DIRECTIONS[1]]
    assert len(rev) == 12
    for d in rev:
        assert (d.speaker.role, d.listener.role) == ("listener", "speaker")
        assert all(c.role == "speaker" for c in index.appropriate_for(d))
        assert d.listener in index.appropriate_for(d)
    assert len(index.persons) == 2 * 3 * 2  # speakers are targets too
    assert len({d.key for d in index.dyads}) == 24


def test_fps_comes_from_the_tree_then_the_argument_then_mars_default(tree):
    assert scan(tree).fps == 25.0
    with pytest.raises(LayoutError, match="drop the fps argument"):
        scan(tree, fps=30)
    (tree / "reactune_synthetic.json").unlink()
    # without the file, 25 fps is the only rate consistent with the 16 kHz audio lengths
    assert scan(tree, fps=25).fps == 25.0
    assert scan(tree, require=(), fps=25.0).clips[0].fps == 25.0
    with pytest.raises(LayoutError, match="s of audio"):
        scan(tree)  # default 30 fps (MARS) disagrees with the audio duration
    assert scan(tree, splits=("train",), fps=25).summary().count("train") == 1
    with pytest.raises(ValueError, match="fps must be"):
        scan(tree, fps=-1)


def test_small_length_differences_are_truncated_to_the_shortest(tree):
    lis = clip_file(tree, "facial-attributes", "listener")
    arr = np.load(lis)
    np.save(lis, arr[:-2])
    np.save(sibling(lis, "coefficients"), np.load(sibling(lis, "coefficients"))[:-1])
    index = scan(tree)
    d = next(d for d in index.dyads if d.listener.files["facial-attributes"] == lis)
    assert d.speaker.n_frames == d.listener.n_frames == len(arr) - 2
    assert load_attributes(d.speaker).shape == (len(arr) - 2, 25)
    assert load_coefficients(d.listener).shape == (len(arr) - 2, 58)
    np.testing.assert_array_equal(load_attributes(d.listener), arr[:-2])


def test_load_audio_reads_mono_stereo_and_24_bit(tree):
    index = scan(tree)
    clip = index.clips[0]
    x, sr = load_audio(clip)
    assert sr == 16_000 and x.dtype == np.float32 and x.ndim == 1 and np.abs(x).max() <= 1
    assert len(x) == clip.n_frames * 640
    t = np.arange(len(x)) / sr
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 200 * t), np.zeros_like(t)], 1)
    write_wav(clip.files["audio"], stereo, width=3)
    y, _ = load_audio(scan(tree).clips[0])
    np.testing.assert_allclose(y, 0.25 * np.sin(2 * np.pi * 200 * t), atol=1e-4)
    assert load_coefficients(clip) is not None and load_audio(scan(tree).clips[0]) is not None


def test_missing_optional_modalities_give_none_and_a_warning(tree):
    for p in (tree / "train" / "audio" / "listener").rglob("*.wav"):
        p.unlink()
    with pytest.warns(UserWarning, match="audio"):
        index = scan(tree)
    assert index.modalities == ("facial-attributes", "coefficients")
    lis = next(c for c in index.clips if c.split == "train" and c.role == "listener")
    assert load_audio(lis) is None and "audio" not in lis.files
    assert any("audio" in str(w) for w in index.warnings)
    for p in tree.rglob("*.npy"):
        if "coefficients" in p.parts:
            p.unlink()
    with pytest.warns(UserWarning):
        index = scan(tree)
    assert load_coefficients(index.clips[0]) is None


def test_expression_rows_not_summing_to_one_only_warn(tree):
    f = clip_file(tree, "facial-attributes")
    arr = np.load(f)
    arr[:, schema.EXPR] *= 2
    np.save(f, arr)
    with pytest.warns(UserWarning, match="expression probabilities"):
        index = scan(tree)
    assert len(index.warnings) == 1 and index.warnings[0].path == f
    assert "softmax" in str(index.warnings[0])


def test_hidden_files_and_mac_resource_forks_are_ignored(tree):
    session = clip_file(tree, "facial-attributes").parent
    (session / "._Camera-2024-01-01-000000-000030.npy").write_bytes(b"\x00\x05\x16\x07garbage")
    (session / ".DS_Store").write_bytes(b"junk")
    (tree / ".hidden").mkdir()
    (tree / ".hidden" / "x.npy").write_text("not an array")
    (tree / "train" / ".cache").mkdir()
    (tree / "train" / "video-raw").mkdir()  # a MARS folder reactune does not use
    (tree / "README.txt").write_text("files at the root are fine")
    assert len(scan(tree).clips) == 24


def test_video_is_only_checked_for_existence(tree):
    f = clip_file(tree, "facial-attributes")
    video = sibling(f, "video-face-crop")
    video.parent.mkdir(parents=True)
    video.write_bytes(b"not decoded: decoding every video would dominate the scan")
    with pytest.warns(UserWarning, match="video-face-crop"):
        index = scan(tree)
    assert any(c.files.get("video-face-crop") == video for c in index.clips)
    assert "video-face-crop" not in index.modalities  # present for one clip only


def test_shallow_scan_checks_headers_only(tree):
    f = clip_file(tree, "facial-attributes")
    arr = np.load(f)
    arr[3, 0] = np.nan
    np.save(f, arr)
    assert len(scan(tree, deep=False).clips) == 24
    with pytest.raises(LayoutError, match="NaN"):
        scan(tree)


def test_index_pickles_for_worker_processes(pristine):
    index = scan(pristine)
    again = pickle.loads(pickle.dumps(index))
    assert again.clips == index.clips and again.dyads == index.dyads
    assert again.clip(index.clips[3].key) == index.clips[3]
    assert hash(index.clips[0]) == hash(again.clips[0])


def test_summary_reports_counts_per_split(pristine):
    text = scan(pristine).summary()
    for split in schema.SPLITS:
        assert f"{split:5s}: 2 sessions, 4 dyads, 8 clips" in text
    assert "fps 25" in text and "facial-attributes" in text
    meta = json.loads((pristine / "reactune_synthetic.json").read_text())
    with wave.open(str(clip_file(pristine, "audio"))) as w:
        assert w.getframerate() == meta["audio_sample_rate"]
