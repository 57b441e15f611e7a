"""Walking a MARS root for `react_data.layout`: metadata files, folder names, per-clip checks.

Every function appends `Problem`s to caller-owned lists instead of raising, so that
`layout.scan` reports every problem of a tree at once.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from react_data import schema
from react_data._layout_checks import Problem, check_npy, check_wav

META_FILE = "reactune_synthetic.json"
PERSONS_FILE = "persons.csv"
PERSONS_COLUMNS = ("split", "role", "session", "stem", "person")
KNOWN_UNUSED = frozenset({"video-raw", "audio-features", "personality", "eeg_processed"})
_SESSION_RE = re.compile(r"session(0|[1-9][0-9]*)")

ClipId = tuple[str, str, int, str]  # (split, role, session, stem)


def read_fps(root: Path, fps: float | None, problems: list[Problem]) -> float | None:
    """The fps recorded in ``reactune_synthetic.json``; None if the file is absent or unusable.

    A given ``fps`` that disagrees with the file is a problem (the file describes the data).
    """
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int | float) or fps <= 0):
        raise ValueError(f"fps must be a positive number (frames per second), got {fps!r}")
    path = root / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
        value = float(meta["fps"])
        if value <= 0:
            raise ValueError(f"fps {value} <= 0")
    except (ValueError, KeyError, TypeError, OSError) as exc:
        problems.append(Problem(path, "a JSON object with a positive 'fps'",
                                f"an unusable file ({type(exc).__name__}: {exc})",
                                "regenerate the tree, or delete the file and pass fps=..."))
        return None
    if fps is not None and abs(fps - value) > 1e-6:
        problems.append(Problem(path, f"fps {fps:g} (the fps argument)", f"fps {value:g}",
                                "drop the fps argument: the tree states its own frame rate"))
    return value


def read_persons(root: Path, problems: list[Problem]) -> dict[ClipId, str] | None:
    """Person ids by (split, role, session, stem) from ``persons.csv``; None if absent."""
    path = root / PERSONS_FILE
    if not path.is_file():
        return None
    out: dict[ClipId, str] = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != PERSONS_COLUMNS:
            problems.append(Problem(path, f"the header {','.join(PERSONS_COLUMNS)}",
                                    f"{reader.fieldnames}", "fix the header line"))
            return None
        for line, row in enumerate(reader, start=2):
            try:
                session = int(row["session"])
                key = (row["split"], row["role"], session, row["stem"])
                if key[0] not in schema.SPLITS or key[1] not in schema.ROLES or not row["person"]:
                    raise ValueError("unknown split/role or empty person")
            except (ValueError, TypeError) as exc:
                problems.append(Problem(path, f"line {line}: split in {schema.SPLITS}, role in "
                                        f"{schema.ROLES}, integer session, non-empty person",
                                        f"{row} ({exc})", "fix or remove the line"))
                continue
            if key in out and out[key] != row["person"]:
                problems.append(Problem(path, f"line {line}: one person per clip",
                                        f"{out[key]!r} and {row['person']!r} for {key}",
                                        "keep one of the lines"))
            out[key] = row["person"]
    return out


def entries(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if not p.name.startswith("."))


def walk(root: Path, splits: Iterable[str],
         problems: list[Problem]) -> dict[ClipId, dict[str, Path]]:
    """Collect clip files by (split, role, session, stem); naming problems go to ``problems``."""
    found: dict[ClipId, dict[str, Path]] = {}
    splits = set(splits)
    for split_dir in entries(root):
        if not split_dir.is_dir() or split_dir.name in KNOWN_UNUSED:
            continue
        if split_dir.name not in schema.SPLITS:
            problems.append(Problem(split_dir, f"a split directory named one of {schema.SPLITS}",
                                    f"unknown directory {split_dir.name!r}",
                                    "rename it to a split name or move it out of the data root"))
            continue
        if split_dir.name not in splits:
            continue
        for mod_dir in entries(split_dir):
            if not mod_dir.is_dir() or mod_dir.name in KNOWN_UNUSED:
                continue
            if mod_dir.name not in schema.MODALITIES:
                problems.append(Problem(mod_dir, f"a modality directory named one of "
                                        f"{tuple(schema.MODALITIES)}",
                                        f"unknown directory {mod_dir.name!r}",
                                        f"rename it, or move it out of {split_dir}"))
                continue
            _walk_modality(split_dir.name, mod_dir, found, problems)
    return found


def _walk_modality(split: str, mod_dir: Path, found: dict[ClipId, dict[str, Path]],
                   problems: list[Problem]) -> None:
    modality, ext = mod_dir.name, schema.MODALITIES[mod_dir.name]
    for role_dir in entries(mod_dir):
        if role_dir.name not in schema.ROLES or not role_dir.is_dir():
            problems.append(Problem(role_dir, f"a role directory named one of {schema.ROLES}",
                                    f"{'unknown directory' if role_dir.is_dir() else 'a file'} "
                                    f"{role_dir.name!r}",
                                    f"move it into {mod_dir}/<role>/session<k>/"))
            continue
        for sess_dir in entries(role_dir):
            m = _SESSION_RE.fullmatch(sess_dir.name)
            if m is None or not sess_dir.is_dir():
                problems.append(Problem(sess_dir, "a session directory named session<k> "
                                        "(k = 0, 1, ... without leading zeros)",
                                        f"{'a directory' if sess_dir.is_dir() else 'a file'} named "
                                        f"{sess_dir.name!r}",
                                        "rename it to session<k>, e.g. session3"))
                continue
            for f in entries(sess_dir):
                if f.is_dir():
                    problems.append(Problem(f, f"{ext} files directly in {sess_dir.name}/",
                                            "a directory", "move its files up one level"))
                elif f.suffix.lower() != ext:
                    problems.append(Problem(f, f"a {ext} file in {modality}/",
                                            f"a {f.suffix or 'suffix-less'} file",
                                            f"convert it to {ext} or move it out of the tree"))
                else:
                    cid = (split, role_dir.name, int(m.group(1)), f.stem)
                    found.setdefault(cid, {})[modality] = f


def clip_frames(files: Mapping[str, Path], fps: float, tol: int, problems: list[Problem],
                 warns: list[Problem], deep: bool) -> int | None:
    """Frame count of one clip (shortest modality), checking agreement; None when unknown."""
    counts: dict[str, int | None] = {}
    if "facial-attributes" in files:
        counts["facial-attributes"] = check_npy(files["facial-attributes"], schema.ATTR_DIM,
                                                "attributes", problems, warns, deep=deep)
    if "coefficients" in files:
        counts["coefficients"] = check_npy(files["coefficients"], schema.COEF_DIM,
                                           "coefficients", problems, warns, deep=deep)
    seconds = check_wav(files["audio"], problems, deep=deep) if "audio" in files else None
    if any(v is None for v in counts.values()) or ("audio" in files and seconds is None):
        return None
    if not counts:
        if seconds is None:
            problems.append(Problem(next(iter(files.values())), "a .npy or .wav file giving the "
                                    "clip's frame count", "only a video",
                                    "add the clip's facial-attributes .npy"))
            return None
        return int(round(seconds * fps))
    n = min(counts.values())
    if max(counts.values()) - n > tol:
        detail = ", ".join(f"{m}: {c}" for m, c in counts.items())
        problems.append(Problem(files["facial-attributes" if "facial-attributes" in files else
                                      "coefficients"],
                                f"the same frame count in every modality (within {tol} frames)",
                                detail, "re-extract the shorter modality from the same video"))
        return None
    if seconds is not None and abs(seconds * fps - n) > tol + 1:
        problems.append(Problem(files["audio"], f"{n / fps:.2f} s of audio ({n} frames at {fps:g} "
                                f"fps, within {tol + 1} frames)",
                                f"{seconds:.2f} s ({seconds * fps:.1f} frames)",
                                "cut the audio from the same recording, or pass the right fps"))
        return None
    return n
