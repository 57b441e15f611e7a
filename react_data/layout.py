"""The MARS directory layout: scan, validate, pair and index a tree of clips.

Layout (REACT 2025/2026 MARS, also written by `react_data.synthetic`)::

    <root>/<split>/<modality>/<role>/session<k>/<stem>.<ext>
      split    train | val | test
      modality facial-attributes (.npy, (T, 25)) | coefficients (.npy, (T, 58))
               | audio (.wav) | video-face-crop (.mp4)
      role     speaker | listener
      stem     e.g. Camera-2024-03-05-101500-102012 (a recording; the same stem under both roles
               is one dyad)
    <root>/persons.csv               optional: split,role,session,stem,person
    <root>/reactune_synthetic.json   optional: written by the synthetic generator (gives fps)

MARS folders this package does not use (``video-raw``, ``audio-features``, ``personality``,
``eeg_processed``) are skipped; names starting with ``.`` (``.DS_Store``, ``._foo.npy``) are
ignored.

Identities: a clip's person comes from ``persons.csv`` when present (then every clip needs a
row). Without it each clip is its own person, ``f"{role}:{stem}"``: one person per role per
recording, so personalised models see no repeated identities.

Appropriate reactions: for a dyad whose target role is R, every clip of role R in the same split
and session (the partner included), as in the 2025 challenge.

Validation (`scan`) collects every problem of the tree and raises one `LayoutError` listing each
with the file, what was expected, what was found and the fix. Errors:

- missing root, unknown split / modality / role folder names, session folders not named
  ``session<k>``, files with the wrong extension, folders inside session folders;
- a clip without its partner (same stem, other role), or without a ``require``-d modality;
- .npy files that are empty, not .npy (e.g. text), truncated, object/pickled (never unpickled),
  not 2-D, of the wrong width (25 / 58), not floating point, with 0 frames, with NaN/inf (the
  first bad frame is named), or with AU occurrences (columns 0-14) not in {0, 1} (tolerance 1e-3);
- .wav files that the `wave` module cannot read (garbage, compressed, truncated);
- frame counts that disagree by more than ``frame_tolerance`` frames (default 2) between a clip's
  attributes and coefficients, between a speaker and its partner, or between a clip and its audio
  duration (``seconds * fps``, one extra frame of rounding slack). Within tolerance, both clips of a
  dyad are truncated to the shortest count (`Clip.n_frames`; the loaders apply it).

Warnings (`ClipIndex.warnings`, also emitted once with `warnings.warn`): expression probability
rows that do not sum to 1 (within 0.02; metrics still work, but models trained on them learn
off-simplex targets) and modalities present for some clips only (they are left out of
`ClipIndex.modalities`).

Videos (.mp4) are only checked for existence: decoding every video would dominate the scan.
``deep=False`` checks .npy headers and .wav headers only (fast on large trees; no value checks).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from react_data import schema
from react_data._layout_checks import Problem, read_wav
from react_data._layout_tree import ClipId, clip_frames, read_fps, read_persons, walk

__all__ = ["Clip", "ClipIndex", "Dyad", "LayoutError", "Problem", "load_attributes", "load_audio",
           "load_coefficients", "scan"]

DEFAULT_FPS = float(schema.MARS_FPS)  # real MARS recordings; synthetic trees state their own
DEFAULT_FRAME_TOLERANCE = 2  # frames; small off-by-one/two from independent extractors is common
DIRECTIONS = ("speaker->listener", "listener->speaker")
_OTHER_ROLE = {"speaker": "listener", "listener": "speaker"}



class LayoutError(ValueError):
    """A MARS tree with problems; ``problems`` lists them all, ``str()`` prints each."""

    def __init__(self, problems: Sequence[Problem], root: Path | str | None = None) -> None:
        self.problems = list(problems)
        self.root = root
        head = f"{len(self.problems)} problem(s) in the MARS tree at {root}:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


@dataclass(frozen=True)
class Clip:
    """One person's recording in one role: its files and frame count (truncated per the policy)."""

    split: str
    role: str
    session: int
    stem: str
    person: str
    n_frames: int
    fps: float
    # modality name -> path, only those present (a plain dict: clips are pickled to workers)
    files: Mapping[str, Path] = field(hash=False)

    @property
    def key(self) -> str:
        return f"{self.split}/{self.role}/session{self.session}/{self.stem}"


@dataclass(frozen=True)
class Dyad:
    """An input clip (``speaker``) and its target clip (``listener``); swapped when reversed."""

    split: str
    session: int
    stem: str
    speaker: Clip
    listener: Clip
    direction: str  # "speaker->listener" or "listener->speaker"

    @property
    def key(self) -> str:
        return f"{self.split}/session{self.session}/{self.stem}/{self.direction}"


@dataclass
class ClipIndex:
    """A validated MARS tree: clips, dyads, persons and appropriate-reaction sets.

    ``appropriate`` maps (split, session) to the keys of its listener-role clips (the targets of
    speaker->listener dyads); ``appropriate_by_role`` maps (split, session, target role) for both
    directions. `appropriate_for` handles either direction.
    """

    root: Path
    clips: list[Clip]
    dyads: list[Dyad]
    modalities: tuple[str, ...]
    persons: list[str]  # sorted unique person ids of target clips; position = person index
    appropriate: dict[tuple[str, int], list[str]]
    fps: float
    warnings: list[Problem] = field(default_factory=list)
    appropriate_by_role: dict[tuple[str, int, str], list[str]] = field(default_factory=dict)
    bidirectional: bool = False
    _by_key: dict[str, Clip] = field(init=False, repr=False)
    _person_idx: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key = {c.key: c for c in self.clips}
        self._person_idx = {p: i for i, p in enumerate(self.persons)}

    def person_index(self, person: str) -> int:
        """Position of a target person id in ``persons`` (the model's person embedding row)."""
        try:
            return self._person_idx[person]
        except KeyError:
            raise KeyError(f"unknown person {person!r}: expected one of the {len(self.persons)} "
                           f"target persons of {self.root} (e.g. {self.persons[:3]})") from None

    def clip(self, key: str) -> Clip:
        """The clip with this key (``split/role/session<k>/stem``)."""
        try:
            return self._by_key[key]
        except KeyError:
            raise KeyError(f"no clip {key!r} under {self.root}; keys look like "
                           f"'train/listener/session3/<stem>'") from None

    def split_dyads(self, split: str) -> list[Dyad]:
        """Dyads of one split, in index order (sorted by session, stem, direction)."""
        _check_split(split)
        return [d for d in self.dyads if d.split == split]

    def appropriate_for(self, dyad: Dyad) -> list[Clip]:
        """All target-role clips of the dyad's split and session (its partner included)."""
        keys = self.appropriate_by_role[(dyad.split, dyad.session, dyad.listener.role)]
        return [self._by_key[k] for k in keys]

    def test_gt_sets(self, split: str = "test", k: int = 10,
                     seed: int = 1234) -> dict[str, list[str]]:
        """Per dyad, the K ground-truth reaction keys of the 2025 test protocol.

        ``[partner] + (k - 1)`` other same-session target clips: sampled without replacement
        when enough exist, with replacement when fewer, the partner repeated when none. Each
        dyad has its own generator seeded by ``(seed, dyad key)``, so a set does not depend on
        which other dyads exist or on iteration order.

        Returns:
            dyad key -> list of k clip keys, the partner first.
        """
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int (number of GT reactions), got {k!r}")
        out: dict[str, list[str]] = {}
        for dyad in sorted(self.split_dyads(split), key=lambda d: d.key):
            partner = dyad.listener.key
            others = sorted(c.key for c in self.appropriate_for(dyad) if c.key != partner)
            rng = random.Random(f"{seed}/{dyad.key}")
            if len(others) >= k - 1:
                extra = rng.sample(others, k - 1)
            elif others:
                extra = rng.choices(others, k=k - 1)
            else:
                extra = [partner] * (k - 1)
            out[dyad.key] = [partner, *extra]
        return out

    def summary(self) -> str:
        """Human-readable counts per split: sessions, dyads, clips, frames, hours."""
        lines = [f"MARS tree {self.root}: fps {self.fps:g}, "
                 f"modalities {', '.join(self.modalities)}, "
                 f"{len(self.persons)} target persons, "
                 f"{'both directions' if self.bidirectional else 'speaker->listener'}"]
        for split in schema.SPLITS:
            clips = [c for c in self.clips if c.split == split]
            if not clips:
                continue
            n = np.array([c.n_frames for c in clips])
            sessions = sorted({c.session for c in clips})
            lines.append(f"  {split:5s}: {len(sessions)} sessions, {len(self.split_dyads(split))} "
                         f"dyads, {len(clips)} clips, frames {n.min()}-{n.max()} (total {n.sum()}, "
                         f"{n.sum() / self.fps / 3600:.2f} h)")
        if self.warnings:
            lines.append(f"  {len(self.warnings)} warning(s); first: {self.warnings[0]}")
        return "\n".join(lines)


def _check_split(split: str) -> None:
    if split not in schema.SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {schema.SPLITS}")



def scan(root: str | Path, *, bidirectional: bool = False, splits: Sequence[str] = schema.SPLITS,
         require: Sequence[str] = ("facial-attributes",), fps: float | None = None,
         frame_tolerance: int = DEFAULT_FRAME_TOLERANCE, deep: bool = True) -> ClipIndex:
    """Walk, validate and pair a MARS tree.

    Args:
        root: the data root (holding train/ val/ test/).
        bidirectional: also make each listener the input and its speaker the target.
        splits: splits to read (others are skipped).
        require: modalities every clip must have.
        fps: frame rate when the tree has no ``reactune_synthetic.json``; default 30 (MARS).
        frame_tolerance: largest frame-count disagreement that is truncated instead of rejected.
        deep: load arrays to check values (finite, AU in {0, 1}); False checks headers only.

    Returns:
        The `ClipIndex`.

    Raises:
        LayoutError: listing every problem found (see the module docstring).
        ValueError: for bad arguments.
    """
    bad_splits = [s for s in splits if s not in schema.SPLITS]
    bad_req = [m for m in require if m not in schema.MODALITIES]
    if isinstance(splits, str) or bad_splits or isinstance(require, str) or bad_req:
        raise ValueError(f"splits must be a subset of {schema.SPLITS} and require of "
                         f"{tuple(schema.MODALITIES)} (sequences of names); got splits={splits!r}, "
                         f"require={require!r}")
    if not isinstance(frame_tolerance, int) or frame_tolerance < 0:
        raise ValueError(f"frame_tolerance must be an int >= 0 (frames), got {frame_tolerance!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LayoutError([Problem(root, "an existing MARS data root directory",
                                   "a file" if root.exists() else "nothing at this path",
                                   "check the path, or make a synthetic tree with "
                                   "`python -m react_data.synthetic ROOT`")], root)
    problems: list[Problem] = []
    warns: list[Problem] = []
    clip_fps = read_fps(root, fps, problems) or fps or DEFAULT_FPS
    persons = read_persons(root, problems)
    found = walk(root, splits, problems)
    if not found and not problems:
        problems.append(Problem(root, "clip files at <root>/<split>/<modality>/<role>/"
                                "session<k>/<stem>.<ext>",
                                f"no clip files for splits {tuple(splits)}",
                                "point at the folder that holds train/ val/ test/"))
    lengths: dict[ClipId, int | None] = {}
    for cid in sorted(found):
        files = found[cid]
        for mod in require:
            if mod not in files:
                split, role, session, stem = cid
                problems.append(Problem(root / split / mod / role / f"session{session}" /
                                        f"{stem}{schema.MODALITIES[mod]}",
                                        f"a {mod} file for clip "
                                        f"{split}/{role}/session{session}/{stem}",
                                        "no such file", "add it, or remove the clip's other files"))
        lengths[cid] = clip_frames(files, clip_fps, frame_tolerance, problems, warns, deep)
        if persons is not None and cid not in persons:
            problems.append(Problem(root / "persons.csv", f"a row for {cid[0]},{cid[1]},{cid[2]},"
                                    f"{cid[3]}", "none", "add the clip's person id to persons.csv"))
    for cid in sorted(found):
        split, role, session, stem = cid
        other = (split, _OTHER_ROLE[role], session, stem)
        if other not in found:
            path = _path_of(found[cid])
            mod = path.parents[2].name
            where = root / split / mod / other[1] / f"session{session}" / path.name
            problems.append(Problem(path, f"its partner {other[1]} clip at {where}",
                                    "no file with this stem under the other role",
                                    f"add the {other[1]}'s files, or remove this clip"))
        elif role == "speaker":
            a, b = lengths[cid], lengths[other]
            if a is not None and b is not None:
                if abs(a - b) > frame_tolerance:
                    here = found[cid].get("facial-attributes", _path_of(found[cid]))
                    problems.append(Problem(here,
                                            f"the partner's frame count within {frame_tolerance} "
                                            f"frames", f"{a} frames here, {b} in "
                                            f"{_path_of(found[other])}",
                                            "re-extract both clips from the same time span"))
                else:
                    lengths[cid] = lengths[other] = min(a, b)
    if problems:
        raise LayoutError(problems, root)
    return _build_index(root, found, lengths, persons, clip_fps, bidirectional, warns)


def _path_of(files: Mapping[str, Path]) -> Path:
    """The first file of a clip in modality order (for messages)."""
    return next(files[m] for m in schema.MODALITIES if m in files)


def _build_index(root: Path, found: dict[ClipId, dict[str, Path]],
                 lengths: dict[ClipId, int | None], persons: dict[ClipId, str] | None,
                 fps: float, bidirectional: bool, warns: list[Problem]) -> ClipIndex:
    order = {s: i for i, s in enumerate(schema.SPLITS)}
    ids = sorted(found, key=lambda c: (order[c[0]], c[2], c[3], schema.ROLES.index(c[1])))
    clips: dict[ClipId, Clip] = {}
    for cid in ids:
        split, role, session, stem = cid
        person = persons[cid] if persons is not None else f"{role}:{stem}"
        files = {m: found[cid][m] for m in schema.MODALITIES if m in found[cid]}
        n = lengths[cid]
        assert n is not None  # every unknown length was reported as a problem
        clips[cid] = Clip(split, role, session, stem, person, n, fps, files)
    dyads: list[Dyad] = []
    for (split, role, session, stem), clip in clips.items():
        if role != "speaker":
            continue
        partner = clips[(split, "listener", session, stem)]
        dyads.append(Dyad(split, session, stem, clip, partner, DIRECTIONS[0]))
        if bidirectional:
            dyads.append(Dyad(split, session, stem, partner, clip, DIRECTIONS[1]))
    by_role: dict[tuple[str, int, str], list[str]] = {}
    for c in clips.values():
        if c.role == "listener" or bidirectional:
            by_role.setdefault((c.split, c.session, c.role), []).append(c.key)
    appropriate = {(s, k): keys for (s, k, r), keys in by_role.items() if r == "listener"}
    all_clips = list(clips.values())
    modalities = tuple(m for m in schema.MODALITIES if all(m in c.files for c in all_clips))
    for m in schema.MODALITIES:
        missing = [c for c in all_clips if m not in c.files]
        if m not in modalities and len(missing) < len(all_clips):
            warns.append(Problem(root / missing[0].split / m, f"{m} files for every clip",
                                 f"{len(all_clips) - len(missing)} of {len(all_clips)} clips have "
                                 f"one (e.g. missing for {missing[0].key})",
                                 f"{m} is ignored; add the missing files to use it"))
    if warns:
        warnings.warn(f"{len(warns)} warning(s) in the MARS tree at {root}; first: {warns[0]} "
                      "(all in ClipIndex.warnings)", stacklevel=3)
    return ClipIndex(root=root, clips=all_clips, dyads=dyads, modalities=modalities,
                     persons=sorted({d.listener.person for d in dyads}), appropriate=appropriate,
                     fps=fps, warnings=warns, appropriate_by_role=by_role,
                     bidirectional=bidirectional)


def load_attributes(clip: Clip) -> np.ndarray:
    """Facial attributes of a clip, truncated to ``clip.n_frames``.

    Returns:
        (T, 25) float32.
    """
    path = clip.files.get("facial-attributes")
    if path is None:
        raise FileNotFoundError(f"clip {clip.key} has no facial-attributes file; scan with "
                                "require=('facial-attributes',) to reject such clips")
    return _load_npy(path, clip.n_frames)


def load_coefficients(clip: Clip) -> np.ndarray | None:
    """FaceVerse 3DMM coefficients, truncated to ``clip.n_frames``; None if the clip has none.

    Returns:
        (T, 58) float32, or None.
    """
    path = clip.files.get("coefficients")
    return None if path is None else _load_npy(path, clip.n_frames)


def load_audio(clip: Clip) -> tuple[np.ndarray, int] | None:
    """The clip's audio as mono float32 in [-1, 1] and its sample rate; None if absent.

    The signal is returned whole (not cut to ``n_frames / fps``); feature extraction pads or
    trims it to the frame grid.

    Returns:
        ((S,) float32 samples, sample rate in Hz), or None.
    """
    path = clip.files.get("audio")
    return None if path is None else read_wav(path)


def _load_npy(path: Path, n_frames: int) -> np.ndarray:
    arr = np.load(path, allow_pickle=False)
    return np.ascontiguousarray(arr[:n_frames], dtype=np.float32)
