"""MP4 writing: decodable files with the expected frame count and size."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.render import count_frames, read_frames, write_mp4


def test_mp4_decodes_with_the_expected_frames(tmp_path):
    t = np.linspace(0, 1, 17)[:, None, None, None]
    frames = (np.ones((17, 32, 48, 3)) * t * 255).astype(np.uint8)  # brightening ramp
    path = write_mp4(tmp_path / "sub" / "ramp.mp4", frames, fps=25)
    assert count_frames(path) == 17
    back = read_frames(path)
    assert back.shape == (17, 32, 48, 3)
    means = back.reshape(17, -1).mean(1)
    assert np.all(np.diff(means) > 0)  # order and content survive the lossy codec
    assert np.abs(back.astype(float) - frames).mean() < 8
    assert not list(tmp_path.glob("sub/*.tmp.mp4"))


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = np.zeros((3, 31, 45, 3), np.uint8)
    path = write_mp4(tmp_path / "odd.mp4", frames)
    assert read_frames(path).shape == (3, 32, 46, 3)


def test_bad_inputs_raise(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_mp4(tmp_path / "x.mp4", np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="empty"):
        write_mp4(tmp_path / "x.mp4", np.zeros((0, 8, 8, 3), np.uint8))
    with pytest.raises(FileNotFoundError):
        count_frames(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="not a decodable video"):
        read_frames(tmp_path / "junk.mp4")
