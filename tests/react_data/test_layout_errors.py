"""Malformed MARS trees: each problem is reported with the file, what was found and the fix."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from react_data.layout import LayoutError, scan
from tests.react_data._trees import clip_file, copy_tree, sibling, tiny_tree, wav_samples, write_wav


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return tiny_tree(tmp_path_factory.mktemp("bad") / "mars")


@pytest.fixture
def tree(pristine, tmp_path):
    return copy_tree(pristine, tmp_path / "mars")


def _attr(root: Path, role: str = "speaker") -> Path:
    return clip_file(root, "facial-attributes", role)


def _edit(path: Path, fn) -> Path:
    np.save(path, fn(np.load(path)))
    return path


def _set(path: Path, r: int, c: int, v: float) -> Path:
    def f(a):
        a[r, c] = v
        return a
    return _edit(path, f)


def _shorten_clip(root: Path, role: str, n: int) -> Path:
    """Cut one clip's attributes, coefficients and audio by n frames (consistently)."""
    f = _attr(root, role)
    _edit(f, lambda a: a[:-n])
    _edit(sibling(f, "coefficients"), lambda a: a[:-n])
    wav = sibling(f, "audio")
    write_wav(wav, np.zeros(wav_samples(wav) - n * 640))
    return f


def _remove_clip(root: Path, role: str) -> Path:
    f = _attr(root, role)
    for m in ("facial-attributes", "coefficients", "audio"):
        sibling(f, m).unlink()
    return f


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _text_npy(path: Path) -> Path:
    np.savetxt(path.with_suffix(".txt"), np.load(path), delimiter=",")
    path.with_suffix(".txt").replace(path)
    return path


def _object_npy(path: Path) -> Path:
    np.save(path, np.array([{"au": [0, 1]}, None], dtype=object), allow_pickle=True)
    return path


def _pickle_npy(path: Path) -> Path:
    path.write_bytes(pickle.dumps(np.load(path)))
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "x.npy").write_bytes(b"")
    return path


# (case id, damage(root) -> the path the message must name, substrings the message must hold)
CASES = [
    ("missing_partner", lambda r: _remove_clip(r, "listener"),
     ["its partner listener clip", "add the listener's files"]),
    ("wrong_width", lambda r: _edit(_attr(r), lambda a: a[:, :24]),
     ["25 columns", "24 columns", "(n_frames, 25)"]),
    ("coef_width", lambda r: _edit(sibling(_attr(r), "coefficients"), lambda a: a[:, :52]),
     ["58 columns", "52 columns"]),
    ("nan", lambda r: _set(_attr(r), 5, 16, np.nan),
     ["frame 5, column 16 (arousal): NaN", "interpolate or drop"]),
    ("inf", lambda r: _set(_attr(r), 7, 2, np.inf), ["frame 7, column 2 (AU4): inf"]),
    ("empty_file", lambda r: (_attr(r).write_bytes(b""), _attr(r))[1],
     ["empty file (0 bytes)", "re-export or re-copy"]),
    ("truncated_npy", lambda r: _truncate(_attr(r)), ["the file is truncated", "re-copy"]),
    ("text_file_named_npy", lambda r: _text_npy(_attr(r)), ["text/CSV", "np.save"]),
    ("object_array", lambda r: _object_npy(_attr(r)), ["an object array", "refused"]),
    ("pickled_array", lambda r: _pickle_npy(_attr(r)),
     ["expected a NumPy .npy file", "starting with b'\\x80"]),
    ("one_dimensional", lambda r: _edit(_attr(r), lambda a: a[:, 0]), ["a 1-D array of shape"]),
    ("integer_dtype", lambda r: _edit(_attr(r), lambda a: a.astype(np.int64)),
     ["floating-point", "int64", "astype(np.float32)"]),
    ("zero_frames", lambda r: _edit(_attr(r), lambda a: a[:0]), ["at least one frame"]),
    ("modalities_disagree", lambda r: sibling(_edit(sibling(_attr(r), "coefficients"),
                                                    lambda a: a[:-10]), "facial-attributes"),
     ["same frame count in every modality (within 2 frames)", "coefficients:", "re-extract"]),
    ("partners_disagree", lambda r: _shorten_clip(r, "speaker", 9),
     ["partner's frame count within 2 frames", "frames here", "same time span"]),
    ("audio_too_short", lambda r: (write_wav(sibling(_attr(r), "audio"), np.zeros(3200)),
                                   sibling(_attr(r), "audio"))[1],
     ["s of audio", "0.20 s", "cut the audio"]),
    ("garbage_wav", lambda r: (sibling(_attr(r), "audio").write_text("RIFF? no"),
                               sibling(_attr(r), "audio"))[1],
     ["a readable PCM WAV", "pcm_s16le"]),
    ("empty_wav", lambda r: (sibling(_attr(r), "audio").write_bytes(b""),
                             sibling(_attr(r), "audio"))[1], ["a readable PCM WAV"]),
    ("au_not_binary", lambda r: _set(_attr(r), 3, 2, 0.7),
     ["in {0, 1}", "frame 3, column 2 (AU4): 0.7", "binarise"]),
    ("unknown_split_dir", lambda r: _mkdir(r / "training"),
     ["unknown directory 'training'", "('train', 'val', 'test')"]),
    ("unknown_modality_dir", lambda r: _mkdir(r / "train" / "Emotion"),
     ["unknown directory 'Emotion'", "'facial-attributes', 'coefficients'"]),
    ("unknown_role_dir", lambda r: _mkdir(r / "train" / "audio" / "P1"),
     ["role directory", "('speaker', 'listener')"]),
    ("bad_session_name", lambda r: _mkdir(r / "val" / "coefficients" / "speaker" / "Session_1"),
     ["session<k>", "'Session_1'", "rename it to session<k>"]),
    ("leading_zero_session",
     lambda r: _mkdir(r / "val" / "coefficients" / "listener" / "session01"),
     ["without leading zeros"]),
    ("wrong_extension", lambda r: (_attr(r).with_suffix(".csv").write_text("1,2"),
                                   _attr(r).with_suffix(".csv"))[1],
     ["a .npy file in facial-attributes/", "a .csv file"]),
    ("missing_required_modality", lambda r: _unlink(_attr(r)),
     ["a facial-attributes file for clip train/speaker/session", "no such file"]),
    ("persons_row_missing", lambda r: _drop_persons_row(r), ["a row for test,listener,"]),
    ("bad_meta_json", lambda r: ((r / "reactune_synthetic.json").write_text("{fps"),
                                 r / "reactune_synthetic.json")[1], ["positive 'fps'"]),
]


def _unlink(path: Path) -> Path:
    path.unlink()
    return path


def _drop_persons_row(root: Path) -> Path:
    p = root / "persons.csv"
    lines = p.read_text().splitlines()
    p.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    return p


@pytest.mark.parametrize(("damage", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_tree_is_rejected_naming_file_and_fix(tree, damage, needles):
    path = damage(tree)
    with pytest.raises(LayoutError) as info:
        scan(tree)
    msg = str(info.value)
    assert str(path) in msg
    for needle in needles:
        assert needle in msg
    assert all(p.fix and p.expected and p.found for p in info.value.problems)
    assert isinstance(info.value, ValueError)


def test_missing_root_is_reported(tmp_path):
    with pytest.raises(LayoutError, match="nothing at this path") as info:
        scan(tmp_path / "nope")
    assert "python -m react_data.synthetic" in str(info.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(LayoutError, match="a file"):
        scan(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match="no clip files"):
        scan(tmp_path / "empty")


def test_every_problem_is_reported_together(tree):
    nan_file = _set(_attr(tree), 1, 20, np.nan)
    listener = _remove_clip(tree, "listener")
    (tree / "testing").mkdir()
    wav = sibling(clip_file(tree, "facial-attributes", "speaker", "val"), "audio")
    wav.write_text("garbage")
    with pytest.raises(LayoutError) as info:
        scan(tree)
    err = info.value
    assert len(err.problems) == 4
    msg = str(err)
    assert msg.startswith("4 problem(s) in the MARS tree")
    for needle in (str(nan_file), str(wav), "'testing'", listener.name):
        assert needle in msg
    assert msg.count("\n  - ") == 4


def test_bad_arguments_raise_value_error(tree):
    with pytest.raises(ValueError, match="splits must be"):
        scan(tree, splits="train")
    with pytest.raises(ValueError, match="require"):
        scan(tree, require=("emotion",))
    with pytest.raises(ValueError, match="frame_tolerance"):
        scan(tree, frame_tolerance=-1)


def test_a_larger_tolerance_accepts_longer_mismatches(tree):
    _shorten_clip(tree, "speaker", 9)
    index = scan(tree, frame_tolerance=10)
    assert len(index.dyads) == 12
    shutil.rmtree(tree / "val")
    assert {d.split for d in scan(tree, frame_tolerance=10).dyads} == {"train", "test"}
