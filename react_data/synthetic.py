"""Synthetic MARS: a small dataset in the exact MARS layout, with learnable structure.

`generate` writes ``<root>/<split>/<modality>/<role>/session<k>/<stem>.<ext>`` (see
`react_data.layout`), ``persons.csv`` and ``reactune_synthetic.json``. Everything is derived from
``seed`` (npy and wav bytes are identical across runs; mp4 containers may differ in metadata).

Generative process (all trajectories are unit-variance AR(1) processes ``ar(tau)`` with time
constant ``tau`` seconds, so the process does not depend on fps):

1. Session context (session number k, shared by every split, like MARS's scripted topics):
   mean valence/arousal ``va_k`` in [-0.5, 0.5]^2, expression logit bias ``e_k`` (one dominant
   expression), AU propensity logits ``u_k``, 3DMM expression bias, and a mirroring gain
   ``g_k`` in [0.5, 1] (how strongly listeners follow the speaker).
2. Persons: each split has ``clips_per_session`` fixed (speaker, listener) pairs of distinct
   people who go through every session together (subject-independent splits). A person has a
   style: VA offset, AU / expression biases, 3DMM expression/pose offsets, a voice pitch and
   skin colour; a listener also has a reaction lag of 0.32-0.48 s (8-12 frames at 25 fps).
3. Speaker: a speaking envelope ``s_t = sigmoid(2 ar(3 s) + 1)`` and syllable-rate mouth
   opening; a mood latent ``m_t = 0.6 ar(2 s) + 0.4 ar(0.25 s)`` (2-d). Valence/arousal
   ``tanh(va_k + style + 0.9 m_t (+ 0.3 s_t for arousal))``; expression probabilities
   ``softmax(e_k + style + E va_t + 0.5 ar(0.4 s))``; AU logits ``u_k + style + A va_t +
   mouth(s_t) + 0.8 ar(0.2 s)`` thresholded at 0.
4. Listener reaction at frame t (lag L): the same face model driven by
   ``va_k + style + 0.9 g_k m_{t-L} + 0.35 ar(1 s)``, AU logits that mirror the lagged
   speaker's brow/smile AUs with gain ``2 g_k``, a closed mouth except for short backchannels
   that follow the speaker's pauses, and expression logits that include ``g_k`` times the
   lagged speaker's expression noise. So same-session listeners are alike, the listener follows
   the speaker after L frames (lag > 0 correlates better than lag 0), copying the speaker (Mime)
   or noise (Random) scores worse than a learnt mapping.
5. 3DMM (both roles): expression coefficients = session bias + person offset + fixed linear maps
   of the AUs and valence/arousal (scale ~0.1) + noise; rotation = person pose + head motion
   (listener nods at backchannels, speaker moves while speaking), clipped to +-0.5 rad;
   translation small (+-0.1). Audio: a voiced signal driven by the speaking envelope (speaker)
   or by backchannels (listener). Video: a 64x64 drawn face moved by rotation, with eyes,
   brows and mouth driven by the AUs.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from react_data import schema
from react_data._layout_tree import META_FILE, PERSONS_COLUMNS, PERSONS_FILE
from react_data._synthetic_media import draw_faces, render_audio, write_video, write_wav

__all__ = ["GENERATOR_VERSION", "generate", "main"]

GENERATOR_VERSION = 1
_AU = {name: i for i, name in enumerate(schema.AU_NAMES)}
_MIRROR_AUS = [_AU[n] for n in ("AU1", "AU2", "AU4", "AU6", "AU12")]  # brows and smile
_MOUTH_AUS = [_AU[n] for n in ("AU10", "AU25", "AU26")]
# Fixed "face physics" (not seeded): how valence/arousal shift expressions and AUs.
_E_VA = np.array([[-0.8, -1.0], [2.0, 0.3], [-2.0, -0.5], [0.2, 2.0], [-1.5, 1.5],
                  [-1.5, 0.3], [-1.5, 1.2], [-0.8, -0.2]], np.float64)  # (8, 2)
_A_VA = np.zeros((schema.N_AU, 2))
_A_VA[[_AU["AU6"], _AU["AU12"]], 0] = 2.0
_A_VA[[_AU["AU4"], _AU["AU15"]], 0] = -1.5
_A_VA[[_AU["AU1"], _AU["AU2"], _AU["AU26"]], 1] = 1.2
_FACE = np.random.default_rng(0xFACE)
_B_AU = _FACE.normal(0.0, 0.04, (schema.N_COEF_EXP, schema.N_AU))  # AU -> 3DMM expression
_B_VA = _FACE.normal(0.0, 0.05, (schema.N_COEF_EXP, 2))
# Seed-sequence tags keep each entity's random stream independent of the others.
_T_SESSION, _T_PERSON, _T_DYAD, _T_LAYOUT = 1, 2, 3, 4


@dataclass(frozen=True)
class _Session:
    va: np.ndarray  # (2,)
    expr: np.ndarray  # (8,)
    au: np.ndarray  # (15,)
    coef: np.ndarray  # (52,)
    gain: float


@dataclass(frozen=True)
class _Person:
    pid: str
    va: np.ndarray  # (2,)
    expr: np.ndarray  # (8,)
    au: np.ndarray  # (15,)
    coef: np.ndarray  # (52,)
    pose: np.ndarray  # (3,)
    trans: np.ndarray  # (3,)
    lag_s: float
    f0: float
    skin: np.ndarray  # (3,) uint8


def _session(seed: int, k: int) -> _Session:
    rng = np.random.default_rng([seed, _T_SESSION, k])
    expr = rng.normal(0.0, 0.7, schema.N_EXPR)
    expr[rng.integers(schema.N_EXPR)] += 2.0
    return _Session(va=rng.uniform(-0.5, 0.5, 2), expr=expr,
                    au=rng.normal(-1.0, 1.2, schema.N_AU),
                    coef=rng.normal(0.0, 0.08, schema.N_COEF_EXP), gain=rng.uniform(0.5, 1.0))


def _person(seed: int, split_i: int, pair: int, role_i: int, pid: str) -> _Person:
    rng = np.random.default_rng([seed, _T_PERSON, split_i, pair, role_i])
    return _Person(pid=pid, va=rng.normal(0.0, 0.12, 2),
                   expr=rng.normal(0.0, 0.4, schema.N_EXPR), au=rng.normal(0.0, 0.4, schema.N_AU),
                   coef=rng.normal(0.0, 0.03, schema.N_COEF_EXP),
                   pose=rng.normal(0.0, 0.05, 3), trans=rng.normal(0.0, 0.02, 3),
                   lag_s=rng.uniform(0.32, 0.48), f0=rng.uniform(100.0, 220.0),
                   skin=rng.integers([170, 120, 90], [240, 190, 160]).astype(np.uint8))


def _ar(rng: np.random.Generator, n: int, dims: int, tau_s: float, fps: float) -> np.ndarray:
    """(n, dims) unit-variance AR(1) with time constant ``tau_s`` seconds."""
    rho = float(np.exp(-1.0 / (tau_s * fps)))
    eps = rng.standard_normal((n, dims))
    x0 = rng.standard_normal(dims)
    return lfilter([np.sqrt(1 - rho**2)], [1.0, -rho], eps, axis=0, zi=rho * x0[None, :])[0]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _lagged(x: np.ndarray, lag: int) -> np.ndarray:
    """x shifted ``lag`` frames later in time (x[t - lag]), first frame repeated at the start."""
    return np.concatenate([np.repeat(x[:1], lag, axis=0), x[: len(x) - lag]])[: len(x)]


def _face(rng: np.random.Generator, ctx: _Session, who: _Person, va_pre: np.ndarray,
          au_extra: np.ndarray, expr_extra: np.ndarray, head: np.ndarray,
          fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Attributes (T, 25) and 3DMM (T, 58) from pre-tanh VA, extra AU/expression logits, head."""
    n = len(va_pre)
    va = np.tanh(va_pre)  # (T, 2)
    au = (ctx.au + who.au + va @ _A_VA.T + au_extra + 0.8 * _ar(rng, n, schema.N_AU, 0.2, fps)) > 0
    expr = _softmax(ctx.expr + who.expr + va @ _E_VA.T + expr_extra)
    attr = np.concatenate([au.astype(np.float64), va, expr], axis=1)
    coef = np.empty((n, schema.COEF_DIM))
    coef[:, schema.COEF_EXP] = (ctx.coef + who.coef + au @ _B_AU.T + va @ _B_VA.T
                                + 0.02 * _ar(rng, n, schema.N_COEF_EXP, 0.3, fps))
    coef[:, schema.COEF_ROT] = np.clip(who.pose + head, -0.5, 0.5)
    coef[:, schema.COEF_TRANS] = np.clip(who.trans + 0.01 * _ar(rng, n, 3, 2.0, fps), -0.1, 0.1)
    return attr.astype(np.float32), coef.astype(np.float32)


def _dyad(rng: np.random.Generator, ctx: _Session, spk: _Person, lis: _Person, n: int,
          fps: float) -> dict[str, np.ndarray]:
    """One dyad's arrays: attributes, 3DMM and loudness envelopes of speaker and listener."""
    speaking = _sigmoid(2.0 * _ar(rng, n, 1, 3.0, fps)[:, 0] + 1.0)  # (T,)
    syllable = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * np.arange(n) / fps + rng.uniform(0, 6.3))
    mouth = speaking * syllable  # (T,) mouth opening while talking
    mood = 0.6 * _ar(rng, n, 2, 2.0, fps) + 0.4 * _ar(rng, n, 2, 0.25, fps)  # (T, 2)
    s_va = ctx.va + spk.va + 0.9 * mood
    s_va[:, 1] += 0.3 * speaking
    s_au_extra = np.zeros((n, schema.N_AU))
    s_au_extra[:, _MOUTH_AUS] = 4.0 * (mouth[:, None] - 0.35)
    s_expr_noise = 0.5 * _ar(rng, n, schema.N_EXPR, 0.4, fps)
    s_head = 0.08 * _ar(rng, n, 3, 1.0, fps) * (0.5 + speaking[:, None])
    s_attr, s_coef = _face(rng, ctx, spk, s_va, s_au_extra, s_expr_noise, s_head, fps)

    lag = int(round(lis.lag_s * fps))
    pause = _lagged(1.0 - speaking, lag)  # the listener responds to the speaker's pauses
    backchannel = ((pause + 0.3 * _ar(rng, n, 1, 0.3, fps)[:, 0]) > 0.9).astype(np.float64)
    l_va = ctx.va + lis.va + 0.9 * ctx.gain * _lagged(mood, lag) + 0.35 * _ar(rng, n, 2, 1.0, fps)
    l_au_extra = np.full((n, schema.N_AU), 0.0)
    l_au_extra[:, _MIRROR_AUS] = 2.0 * ctx.gain * (_lagged(s_attr[:, _MIRROR_AUS], lag) - 0.5)
    l_au_extra[:, _MOUTH_AUS] = 3.0 * backchannel[:, None] - 1.5
    l_expr = ctx.gain * _lagged(s_expr_noise, lag) + 0.3 * _ar(rng, n, schema.N_EXPR, 0.5, fps)
    nod = 0.15 * backchannel * np.sin(2 * np.pi * 2.0 * np.arange(n) / fps)
    l_head = 0.06 * _ar(rng, n, 3, 1.5, fps)
    l_head[:, 0] += nod  # pitch
    l_attr, l_coef = _face(rng, ctx, lis, l_va, l_au_extra, l_expr, l_head, fps)
    return {"speaker_attr": s_attr, "speaker_coef": s_coef, "speaker_env": mouth,
            "listener_attr": l_attr, "listener_coef": l_coef, "listener_env": 0.4 * backchannel}


def _stem(day: date, start_s: int, n_frames: int, fps: float) -> str:
    end_s = start_s + int(np.ceil(n_frames / fps))

    def hms(s: int) -> str:
        return f"{s // 3600:02d}{s % 3600 // 60:02d}{s % 60:02d}"

    return f"Camera-{day.isoformat()}-{hms(start_s)}-{hms(end_s)}"


def _check_args(sessions: int, clips_per_session: int, frames: int | None, min_frames: int,
                max_frames: int, fps: float, splits: Sequence[str]) -> None:
    def positive_int(name: str, v: object) -> None:
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")

    positive_int("clips_per_session", clips_per_session)
    positive_int("sessions", sessions)
    if sessions > schema.N_SESSIONS:
        raise ValueError(f"sessions must be <= {schema.N_SESSIONS} (MARS has session0..session"
                         f"{schema.N_SESSIONS - 1}), got {sessions}")
    if frames is not None:
        positive_int("frames", frames)
    positive_int("min_frames", min_frames)
    positive_int("max_frames", max_frames)
    if min_frames > max_frames:
        raise ValueError(f"min_frames ({min_frames}) must be <= max_frames ({max_frames})")
    if isinstance(fps, bool) or not isinstance(fps, int | float) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if isinstance(splits, str) or not splits or any(s not in schema.SPLITS for s in splits) \
            or len(set(splits)) != len(splits):
        raise ValueError(f"splits must be distinct names from {schema.SPLITS}, got {splits!r}")


def _prepare_root(root: Path, overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} is a file; pass a directory path for the synthetic tree")
    if root.is_dir() and any(root.iterdir()):
        if not (overwrite and (root / META_FILE).is_file()):
            raise FileExistsError(
                f"{root} is not empty; pass an empty or new directory, or overwrite=True "
                f"(--overwrite) to replace a tree written by this generator (it has {META_FILE})")
        for split in schema.SPLITS:
            shutil.rmtree(root / split, ignore_errors=True)
        for name in (META_FILE, PERSONS_FILE):
            (root / name).unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)


def generate(root: str | Path, *, seed: int = 0, sessions: int = 6, clips_per_session: int = 4,
             frames: int | None = None, min_frames: int = 150, max_frames: int = 400,
             fps: float = schema.FPS, splits: Sequence[str] = schema.SPLITS, video: bool = True,
             audio: bool = True, progress: bool = True, overwrite: bool = False) -> Path:
    """Write a synthetic MARS tree (see the module docstring for the generative process).

    Args:
        root: output directory (created; must be empty unless ``overwrite``).
        seed: the only source of randomness.
        sessions: number of session folders (chosen among session0..session22), same in each split.
        clips_per_session: dyads per session and split (= speaker/listener pairs per split).
        frames: fixed clip length in frames (e.g. 750); None draws each dyad's length uniformly
            from [min_frames, max_frames].
        min_frames: shortest clip when ``frames`` is None.
        max_frames: longest clip when ``frames`` is None.
        fps: frame rate of the features, audio timing and video.
        splits: which splits to write.
        video: write 64x64 face-crop .mp4 files (the slowest part).
        audio: write 16 kHz mono .wav files.
        progress: show a tqdm bar on stderr.
        overwrite: replace an existing tree written by this generator.

    Returns:
        The root path.
    """
    _check_args(sessions, clips_per_session, frames, min_frames, max_frames, fps, splits)
    root = Path(root).expanduser()
    _prepare_root(root, overwrite)
    layout_rng = np.random.default_rng([seed, _T_LAYOUT])
    session_ids = sorted(int(k) for k in layout_rng.choice(schema.N_SESSIONS, sessions,
                                                           replace=False))
    contexts = {k: _session(seed, k) for k in session_ids}
    mods = ["facial-attributes", "coefficients"] + ["audio"] * audio + ["video-face-crop"] * video
    jobs, person_rows = [], []
    for split_i, split in enumerate(schema.SPLITS):
        for pair in range(clips_per_session):
            people = [_person(seed, split_i, pair, r, f"P{split_i}{pair:03d}{r}") for r in (0, 1)]
            day = date(2024, 3, 4) + timedelta(days=split_i * 100 + pair)
            start = 9 * 3600
            for k in session_ids:
                n = frames if frames is not None else int(layout_rng.integers(min_frames,
                                                                              max_frames + 1))
                stem = _stem(day, start, n, fps)
                start += int(np.ceil(n / fps)) + int(layout_rng.integers(30, 120))
                if split in splits:
                    jobs.append((split, split_i, k, pair, stem, n, people))
                    person_rows += [(split, role, k, stem, p.pid)
                                    for role, p in zip(schema.ROLES, people, strict=True)]
    from tqdm import tqdm

    for split, split_i, k, pair, stem, n, (spk, lis) in tqdm(
            jobs, desc=f"synthetic MARS -> {root}", unit="dyad", disable=not progress):
        rng = np.random.default_rng([seed, _T_DYAD, split_i, k, pair])
        arrays = _dyad(rng, contexts[k], spk, lis, n, fps)
        for role, person in zip(schema.ROLES, (spk, lis), strict=True):
            dirs = {m: root / split / m / role / f"session{k}" for m in mods}
            for d in dirs.values():
                d.mkdir(parents=True, exist_ok=True)
            attr, coef = arrays[f"{role}_attr"], arrays[f"{role}_coef"]
            np.save(dirs["facial-attributes"] / f"{stem}.npy", attr)
            np.save(dirs["coefficients"] / f"{stem}.npy", coef)
            if audio:
                wav = render_audio(arrays[f"{role}_env"], person.f0, fps, rng)
                write_wav(dirs["audio"] / f"{stem}.wav", wav)
            if video:
                write_video(dirs["video-face-crop"] / f"{stem}.mp4",
                            draw_faces(attr, coef, person.skin), fps)
    with (root / PERSONS_FILE).open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(PERSONS_COLUMNS)
        w.writerows(sorted(person_rows))
    meta = {"generator": "react_data.synthetic", "version": GENERATOR_VERSION, "seed": seed,
            "fps": fps, "splits": list(splits), "sessions": session_ids,
            "clips_per_session": clips_per_session, "frames": frames, "min_frames": min_frames,
            "max_frames": max_frames, "audio_sample_rate": schema.AUDIO_SAMPLE_RATE if audio
            else None, "video": video, "n_dyads": len(jobs),
            "n_frames_total": int(sum(j[5] for j in jobs))}
    (root / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m react_data.synthetic ROOT [--seed N --frames 750 ...]``."""
    p = argparse.ArgumentParser(prog="python -m react_data.synthetic",
                                description="Write a synthetic MARS tree (REACT 2025 layout).")
    p.add_argument("root", type=Path, help="output directory (new or empty)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sessions", type=int, default=6, help="session folders per split (<= 23)")
    p.add_argument("--clips", type=int, default=4, help="dyads per session and split")
    p.add_argument("--frames", type=int, default=None, help="fixed clip length (e.g. 750)")
    p.add_argument("--min-frames", type=int, default=150)
    p.add_argument("--max-frames", type=int, default=400)
    p.add_argument("--fps", type=float, default=float(schema.FPS))
    p.add_argument("--splits", nargs="+", default=list(schema.SPLITS), choices=schema.SPLITS)
    p.add_argument("--no-video", action="store_true", help="skip the .mp4 face crops")
    p.add_argument("--no-audio", action="store_true", help="skip the .wav files")
    p.add_argument("--overwrite", action="store_true", help="replace a tree made by this tool")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    try:
        root = generate(a.root, seed=a.seed, sessions=a.sessions, clips_per_session=a.clips,
                        frames=a.frames, min_frames=a.min_frames, max_frames=a.max_frames,
                        fps=a.fps, splits=tuple(a.splits), video=not a.no_video,
                        audio=not a.no_audio, progress=not a.quiet, overwrite=a.overwrite)
    except (ValueError, FileExistsError) as exc:
        p.error(str(exc))
    print(f"wrote synthetic MARS tree to {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
