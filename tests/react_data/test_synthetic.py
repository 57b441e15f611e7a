"""The synthetic MARS generator: layout, determinism, value ranges and learnable structure."""

from __future__ import annotations

import csv
import json
import re
import wave

import numpy as np
import pytest

from react_data import schema
from react_data.layout import load_attributes, load_audio, load_coefficients, scan
from react_data.synthetic import GENERATOR_VERSION, generate, main
from tests.react_data._trees import TINY, tiny_tree

STEM = re.compile(r"Camera-\d{4}-\d{2}-\d{2}-\d{6}-\d{6}")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_tree(tmp_path_factory.mktemp("syn") / "mars")


@pytest.fixture(scope="module")
def learn_index(tmp_path_factory):
    """6 sessions x 4 dyads of 300 frames in train and test (features only)."""
    root = generate(tmp_path_factory.mktemp("learn") / "mars", seed=3, frames=300,
                    splits=("train", "test"), video=False, audio=False, progress=False)
    return scan(root, require=("facial-attributes", "coefficients"))


def test_generate_writes_the_mars_tree_with_paired_stems_and_person_table(tiny):
    meta = json.loads((tiny / "reactune_synthetic.json").read_text())
    assert meta["seed"] == 0 and meta["version"] == GENERATOR_VERSION and meta["fps"] == 25
    sessions = meta["sessions"]
    assert len(sessions) == 2 and all(0 <= k < schema.N_SESSIONS for k in sessions)
    stems = {}
    for split in schema.SPLITS:
        for mod in ("facial-attributes", "coefficients", "audio"):
            for role in schema.ROLES:
                d = tiny / split / mod / role
                assert {p.name for p in d.iterdir()} == {f"session{k}" for k in sessions}
                for k in sessions:
                    names = sorted(p.stem for p in (d / f"session{k}").iterdir())
                    assert len(names) == 2 and all(STEM.fullmatch(n) for n in names)
                    assert all(p.suffix == schema.MODALITIES[mod]
                               for p in (d / f"session{k}").iterdir())
                    stems.setdefault((split, k), set()).add(tuple(names))
        assert not (tiny / split / "video-face-crop").exists()  # video=False
    assert all(len(v) == 1 for v in stems.values())  # same stems in every modality and role
    with (tiny / "persons.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2 * 2 * 2
    by_pair = {}
    for r in rows:
        by_pair.setdefault((r["split"], r["session"], r["stem"]), {})[r["role"]] = r["person"]
    assert all(v["speaker"] != v["listener"] for v in by_pair.values())
    listeners = {(r["split"], r["person"]) for r in rows if r["role"] == "listener"}
    assert len(listeners) == 3 * 2  # each listener goes through every session of its split
    split_of = {}
    for r in rows:
        split_of.setdefault(r["person"], set()).add(r["split"])
    assert all(len(s) == 1 for s in split_of.values())  # subject-independent splits


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path, tiny):
    again = tiny_tree(tmp_path / "again")
    other = tiny_tree(tmp_path / "other", seed=1)
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert len(files) > 3 * 2 * 2 * 2 * 3
    for rel in files:
        assert (tiny / rel).read_bytes() == (again / rel).read_bytes(), rel
    a = sorted(tiny.rglob("*.npy"))[0].read_bytes()
    b = sorted(other.rglob("*.npy"))[0].read_bytes()
    assert a != b


def test_values_lie_in_the_valid_ranges(tiny):
    index = scan(tiny)
    for clip in index.clips:
        attr, coef = load_attributes(clip), load_coefficients(clip)
        assert attr.dtype == np.float32 and attr.shape == (clip.n_frames, schema.ATTR_DIM)
        assert coef.dtype == np.float32 and coef.shape == (clip.n_frames, schema.COEF_DIM)
        assert set(np.unique(attr[:, schema.AU])) <= {0.0, 1.0}
        assert np.all(np.abs(attr[:, schema.VA]) <= 1.0)
        assert np.all(attr[:, schema.EXPR] >= 0)
        np.testing.assert_allclose(attr[:, schema.EXPR].sum(1), 1.0, atol=1e-5)
        assert np.abs(coef[:, schema.COEF_EXP]).max() < 1.5
        assert coef[:, schema.COEF_EXP].std() < 0.3
        assert np.abs(coef[:, schema.COEF_ROT]).max() <= 0.5
        assert np.abs(coef[:, schema.COEF_TRANS]).max() <= 0.1
        with wave.open(str(clip.files["audio"])) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16_000)
            assert w.getnframes() == clip.n_frames * 16_000 // 25
    a = np.concatenate([load_attributes(c) for c in index.clips])
    assert 0.05 < a[:, schema.AU].mean() < 0.6  # AUs do occur, not all the time
    assert a[:, schema.VA].std(0).min() > 0.1


def test_lengths_vary_within_bounds_and_partners_match(tiny):
    index = scan(tiny)
    n = [c.n_frames for c in index.clips]
    assert min(n) >= TINY["min_frames"] and max(n) <= TINY["max_frames"]
    assert len(set(n)) > 3
    assert all(d.speaker.n_frames == d.listener.n_frames for d in index.dyads)


def test_cli_frames_750_gives_full_length_clips(tmp_path, capsys):
    root = tmp_path / "full"
    assert main([str(root), "--frames", "750", "--sessions", "1", "--clips", "1", "--no-video",
                 "--no-audio", "--quiet", "--splits", "val"]) == 0
    assert "wrote synthetic MARS tree" in capsys.readouterr().out
    index = scan(root)
    assert [c.n_frames for c in index.clips] == [750, 750]
    assert {c.split for c in index.clips} == {"val"}


def test_video_is_a_decodable_face_crop_that_moves_with_the_mouth(tmp_path):
    av = pytest.importorskip("av")
    root = generate(tmp_path / "v", sessions=1, clips_per_session=1, frames=60, audio=False,
                    splits=("train",), progress=False)
    clip = scan(root).clips[0]
    with av.open(str(clip.files["video-face-crop"])) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert frames.shape == (60, 64, 64, 3)
    mouth = load_attributes(clip)[:, schema.AU][:, schema.AU_NAMES.index("AU25")]
    redness = (frames[:, 40:56, 16:48, 0].astype(int) - frames[:, 40:56, 16:48, 1]).mean((1, 2))
    if 0 < mouth.mean() < 1:  # an open mouth draws a red ellipse
        assert redness[mouth == 1].mean() > redness[mouth == 0].mean()


def test_speaker_audio_energy_follows_the_mouth(tiny):
    index = scan(tiny)
    r = []
    for dyad in index.dyads:
        x, sr = load_audio(dyad.speaker)
        hop = sr // 25
        rms = np.sqrt((x[: dyad.speaker.n_frames * hop].reshape(-1, hop) ** 2).mean(1))
        mouth = load_attributes(dyad.speaker)[:, schema.AU_NAMES.index("AU25")]
        if mouth.std() > 0:
            r.append(np.corrcoef(rms, mouth)[0, 1])
    assert np.mean(r) > 0.3
    spk = np.mean([np.abs(load_audio(d.speaker)[0]).mean() for d in index.dyads])
    lis = np.mean([np.abs(load_audio(d.listener)[0]).mean() for d in index.dyads])
    assert spk > 2 * lis  # listeners mostly stay quiet


def _mean_attr(clip):
    return load_attributes(clip).mean(0)


def test_paired_listener_is_closer_to_same_session_listeners_than_to_other_sessions(learn_index):
    dyads = learn_index.split_dyads("train") + learn_index.split_dyads("test")
    means = np.stack([_mean_attr(d.listener) for d in dyads])  # (N, 25)
    session = np.array([d.session for d in dyads])
    d2 = ((means[:, None] - means[None]) ** 2).sum(-1)
    same = session[:, None] == session[None]
    np.fill_diagonal(same, False)
    other = session[:, None] != session[None]
    assert d2[same].mean() < 0.5 * d2[other].mean()
    # nearest neighbour (excluding itself) is from the same session far above chance (1/6)
    np.fill_diagonal(d2, np.inf)
    assert (session[d2.argmin(1)] == session).mean() > 0.7


def _lag_corr(dyads, lag):
    r = []
    for d in dyads:
        s, li = load_attributes(d.speaker)[:, schema.VA], load_attributes(d.listener)[:, schema.VA]
        a, b = li[lag:], s[: len(s) - lag]
        r += [np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(2)]
    return float(np.mean(r))


def test_listener_follows_the_speaker_with_a_reaction_lag(learn_index):
    dyads = learn_index.split_dyads("train")
    corr = {lag: _lag_corr(dyads, lag) for lag in (0, 5, 10, 15, 30)}
    assert corr[10] > corr[0] + 0.05
    assert max(corr, key=corr.get) in (5, 10, 15)
    assert corr[10] > 0.3


def test_a_learnt_mapping_beats_mime_and_the_mean_reaction(learn_index):
    """Ridge regression from lagged speaker features + session one-hot, fit on train."""
    sessions = sorted({d.session for d in learn_index.dyads})
    cont = np.r_[schema.VA, schema.EXPR]  # continuous listener dims

    def design(dyads):
        xs, ys, mime = [], [], []
        for d in dyads:
            s, li = load_attributes(d.speaker), load_attributes(d.listener)
            lagged = np.concatenate([np.repeat(s[:1], 10, 0), s[:-10]])
            onehot = np.zeros((len(s), len(sessions)))
            onehot[:, sessions.index(d.session)] = 1
            xs.append(np.concatenate([lagged, onehot, np.ones((len(s), 1))], 1))
            ys.append(li[:, cont])
            mime.append(s[:, cont])
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(mime)

    x, y, _ = design(learn_index.split_dyads("train"))
    w = np.linalg.solve(x.T @ x + 1e-2 * np.eye(x.shape[1]), x.T @ y)
    xt, yt, mime = design(learn_index.split_dyads("test"))
    mse_model = ((xt @ w - yt) ** 2).mean()
    mse_mime = ((mime - yt) ** 2).mean()
    mse_mean = ((y.mean(0) - yt) ** 2).mean()
    assert mse_model < 0.7 * mse_mime
    assert mse_model < 0.7 * mse_mean


def test_bad_arguments_and_non_empty_roots_are_rejected(tmp_path, tiny):
    with pytest.raises(ValueError, match="sessions must be <= 23"):
        generate(tmp_path / "a", sessions=24, progress=False)
    with pytest.raises(ValueError, match="min_frames"):
        generate(tmp_path / "b", min_frames=50, max_frames=10, progress=False)
    with pytest.raises(ValueError, match="splits"):
        generate(tmp_path / "c", splits="train", progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        tiny_tree(tmp_path / "busy", overwrite=True)  # not a generator tree: never deleted
    assert (tmp_path / "busy" / "notes.txt").exists()


def test_overwrite_replaces_a_generated_tree_without_stale_clips(tmp_path):
    root = tiny_tree(tmp_path / "t", clips_per_session=3)
    with pytest.raises(FileExistsError, match="overwrite"):
        tiny_tree(root)
    tiny_tree(root, clips_per_session=1, overwrite=True)
    assert len(scan(root).dyads) == 3 * 2 * 1
