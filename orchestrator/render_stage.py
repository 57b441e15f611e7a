"""``stage=render``: K generated reactions of chosen validation speakers, seen, not just scored.

For each chosen speaker of the split, the exported bundle generates K listener reactions; the
stage writes under ``out_dir/<item>/``:

    attributes.png / .mp4   AU heatmap, valence/arousal, expression probabilities: speaker, real
                            listener, K generated (the video moves a time cursor)
    faces.mp4 / faces.png   3D faces from the 58-d 3DMM: [speaker video] | speaker | real
                            listener | generated 1..K (FaceVerse when given, else the procedural
                            head; pytorch3d when installed, else the torch rasterizer)
    pirender.mp4            photoreal frames (PIRender checkpoint + reference portrait), optional
    fid/real, fid/fake      every 30th frame as PNG for ``python -m pytorch_fid``, optional

and ``out_dir/render_summary.json`` (items, files, realism scores, what was used). Realism:
``FRRea`` (FID, the challenge's protocol) when an Inception extractor, PIRender and the real
videos are given; always ``FRRea_features`` (feature-space Fréchet distance, labelled, not FID).

Runs as its own Ray task (`run_render_job`), never inside training.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from orchestrator.render import fid as fid_mod
from orchestrator.render.face_model import denormalize
from orchestrator.render.plots import attribute_view, mosaic_frames, png_bytes
from orchestrator.render.video import write_mp4
from react_data import schema

__all__ = ["SUMMARY_FILE", "RenderOptions", "render", "render_from_config", "run_render_job"]

SUMMARY_FILE = "render_summary.json"


@dataclass(frozen=True)
class RenderOptions:
    """What to render and with what (every field is a ``render.<name>`` config key)."""

    speakers: Sequence[int | str] = (0, 1)  # eval-set indices or dyad keys (substring match)
    num_samples: int = 3  # K reactions per speaker shown (the challenge scores 10)
    split: str = "val"  # the split the speakers come from
    max_frames: int = 250  # frames rendered per clip (10 s at 25 fps; MARS clips are long)
    faceverse: str | None = None  # faceverse_simple_v2.npy (licence-gated); None = procedural
    faceverse_identity: str | None = None  # reference_full.npy ([:150] identity); None = mean
    pirender: str | None = None  # REACT PIRender checkpoint (cur_model_fold.pth); None = skip
    reference: str | None = None  # portrait for PIRender; None = the real listener's 1st frame
    video_root: str | None = None  # MARS tree with video-face-crop/ (real frames, speaker video)
    inception: str | None = None  # TorchScript Inception extractor -> FRRea (FID)
    fid_frames: bool = False  # also write every 30th real/fake frame as PNG (pytorch_fid dirs)
    backend: str = "auto"  # auto | torch | pytorch3d
    image_size: int = 224  # the challenge's frame size
    supersample: int = 1  # anti-aliasing factor of the torch rasterizer (2 = 4x the work)
    expression_scale: float = 1.0  # procedural head only: exaggerate small coefficients
    rotation_offset: Sequence[float] = (0.0, 0.0, 0.0)  # Euler radians added to every pose
    fps: float = schema.FPS
    seed: int = 0  # sampling seed (the same K reactions on every run)
    device: str = "cpu"  # cuda when the job was given a GPU
    progress: bool = True

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> RenderOptions:
        """Options from a config mapping; unknown keys raise ValueError naming them."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown render option(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


@dataclass
class _Item:
    index: int
    key: str
    speaker_clip: str
    listener_clip: str
    files: dict[str, str] = field(default_factory=dict)


def _select(keys: Sequence[str], speakers: Sequence[int | str]) -> list[int]:
    out = []
    for s in speakers:
        if isinstance(s, (int, np.integer)) or (isinstance(s, str) and s.isdigit()):
            i = int(s)
            if not 0 <= i < len(keys):
                raise ValueError(f"speaker index {i} is out of range: the split has {len(keys)} "
                                 f"speakers (0..{len(keys) - 1})")
            out.append(i)
            continue
        hits = [i for i, k in enumerate(keys) if k == s] or [i for i, k in enumerate(keys)
                                                              if str(s) in k]
        if len(hits) != 1:
            raise ValueError(f"speaker {s!r} matches {len(hits)} dyad keys (need exactly one); "
                             f"keys look like {keys[:3]}")
        out.append(hits[0])
    if not out:
        raise ValueError("render.speakers is empty; give eval-set indices or dyad keys")
    return out


def _sub_batch(batch: Any, idx: list[int], t: int) -> Any:
    """The chosen items of a ReactionBatch, cropped to t frames."""
    moved = {}
    for f in fields(batch):
        v = getattr(batch, f.name)
        if isinstance(v, torch.Tensor):
            v = v[idx]
            if v.ndim >= 2 and f.name != "listener_idx" and f.name != "session":
                v = v[:, :t]
        elif isinstance(v, list):
            v = [v[i] for i in idx]
        moved[f.name] = v
    return replace(batch, **moved)


def _video_path(root: Path, clip_key: str) -> Path:
    split, role, session, stem = clip_key.split("/")
    return root / split / "video-face-crop" / role / session / f"{stem}.mp4"


def _real_frames(root: Path, clip_key: str, t: int, size: int) -> np.ndarray:
    """(t, size, size, 3) frames of a clip's face-crop video (last frame repeated if short)."""
    from PIL import Image

    from orchestrator.render.video import read_frames

    path = _video_path(root, clip_key)
    if not path.is_file():
        raise FileNotFoundError(f"no video {path} for clip {clip_key}; render.video_root must be "
                                f"the MARS tree with video-face-crop/ (or leave it unset)")
    frames = read_frames(path, max_frames=t)
    frames = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR))
                       for f in frames])
    if len(frames) < t:
        frames = np.concatenate([frames, np.repeat(frames[-1:], t - len(frames), 0)])
    return frames


def _clip_keys(eval_set: Any, n: int) -> tuple[str, str]:
    """(speaker clip key, listener clip key) of dyad n (``split/role/session<k>/stem``)."""
    split, session, stem, direction = eval_set.keys[n].split("/")
    src = direction.split("->")[0]
    return f"{split}/{src}/{session}/{stem}", eval_set.appropriate_keys[n][0]


def render(bundle: str | Path, data_uri: str, options: RenderOptions | None = None, *,
           out_dir: str | Path | None = None,
           storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Render K reactions of the chosen speakers (see the module docstring).

    Args:
        bundle: model bundle written by ``stage=export``.
        data_uri: the prepared dataset (local path or ``s3://``).
        options: `RenderOptions`.
        out_dir: where to write (default ``<bundle folder>/renders/<bundle stem>``).
        storage_options: ``react_data`` storage options (S3 endpoint).

    Returns:
        The summary written to ``out_dir/render_summary.json``.
    """
    from tqdm.auto import tqdm

    from react_data.evalset import load_eval_set, train_stats
    from react_models import load_bundle

    o = options or RenderOptions()
    t0 = time.monotonic()
    if o.num_samples < 1 or o.max_frames < 2:
        raise ValueError(f"render.num_samples >= 1 and render.max_frames >= 2 required, got "
                         f"{o.num_samples} / {o.max_frames}")
    if o.inception and not (o.pirender and o.video_root):
        raise ValueError("render.inception (FID) compares real listener video frames with "
                         "PIRender frames: it also needs render.pirender and render.video_root")
    device = torch.device(o.device)
    bundle = Path(bundle)
    out = Path(out_dir) if out_dir else bundle.parent / "renders" / bundle.stem
    out.mkdir(parents=True, exist_ok=True)
    face, renderer, backend = _face_and_renderer(o, device)
    net = extractor = None
    if o.pirender:
        from orchestrator.render.pirender import load_pirender

        net = load_pirender(o.pirender, map_location=device)
    if o.inception:
        extractor = fid_mod.load_feature_extractor(o.inception, map_location=device)
    model = load_bundle(bundle, map_location=device)
    so = {"storage_options": storage_options} if storage_options else {}
    eval_set = load_eval_set(data_uri, o.split, **so)
    stats = train_stats(data_uri, **so)
    mean, std = stats.get("coef_mean"), stats.get("coef_std")
    idx = _select(eval_set.keys, o.speakers)
    t = min(eval_set.num_frames, o.max_frames)
    batch = _sub_batch(eval_set.batch, idx, t).to(device)
    torch.manual_seed(o.seed)
    sample = model.sample(batch, num_samples=o.num_samples)
    gen_attr = sample.attr.detach().cpu().numpy()  # (n, K, T, 25)
    gen_coef = denormalize(sample.coef, mean, std)  # (n, K, T, 58)
    real_coef = (denormalize(batch.listener_coef, mean, std)
                 if batch.listener_coef is not None else None)
    spk_coef = (denormalize(batch.speaker_coef, mean, std)
                if batch.speaker_coef is not None else None)
    items, real_fid, fake_fid = [], [], []
    root = Path(o.video_root).expanduser() if o.video_root else None
    bar = tqdm(total=len(idx) * (3 + o.num_samples + (net is not None) * (1 + o.num_samples)),
               desc="render", disable=not o.progress)
    for j, n in enumerate(idx):
        spk_key, lis_key = _clip_keys(eval_set, n)
        item = _Item(index=n, key=eval_set.keys[n], speaker_clip=spk_key, listener_clip=lis_key)
        d = out / f"{j:02d}_{n:04d}"
        rows = {"speaker": eval_set.speaker[n, :t], "listener (real)": eval_set.listener[n, :t]}
        rows.update({f"generated {k + 1}": gen_attr[j, k] for k in range(o.num_samples)})
        view = attribute_view(rows, fps=o.fps, title=f"{item.key}  ({model.name})")
        item.files["attributes_png"] = _write_png(d / "attributes.png", view.image, out)
        item.files["attributes_mp4"] = _rel(write_mp4(d / "attributes.mp4", view.frames(),
                                                      o.fps), out)
        bar.update(1)
        spk_video = _real_frames(root, spk_key, t, o.image_size) if root else None
        lis_video = _real_frames(root, lis_key, t, o.image_size) if root else None
        tiles, labels = ([spk_video], ["speaker (video)"]) if spk_video is not None else ([], [])
        for label, c in (("speaker", None if spk_coef is None else spk_coef[j]),
                         ("listener (real)", None if real_coef is None else real_coef[j])):
            if c is not None:
                tiles.append(renderer(face, c))
                labels.append(label)
            bar.update(1)
        for k in range(o.num_samples):
            tiles.append(renderer(face, gen_coef[j, k]))
            labels.append(f"generated {k + 1}")
            bar.update(1)
        cols = min(len(tiles), 6)
        item.files["faces_mp4"] = _rel(write_mp4(d / "faces.mp4", mosaic_frames(
            tiles, labels, cols), o.fps), out)
        still = [x[t // 2:t // 2 + 1] for x in tiles]
        item.files["faces_png"] = _write_png(d / "faces.png",
                                             next(mosaic_frames(still, labels, cols)), out)
        if net is not None:
            fake = _photoreal(o, net, item, d, out, lis_video, real_coef, gen_coef, j, t, bar)
            if lis_video is not None:
                real_fid.append(lis_video[::fid_mod.FRAME_STRIDE])
                fake_fid.append(fake[::fid_mod.FRAME_STRIDE])
        items.append(item)
    bar.close()
    realism = _realism(gen_attr, [eval_set.appropriate[n][:, :t] for n in idx], extractor,
                       real_fid, fake_fid, out if o.fid_frames else None)
    summary = {
        "format": "reactune-renders", "version": 1, "bundle": str(bundle),
        "model": model.name, "out_dir": str(out), "data": data_uri, "split": o.split, "frames": t,
        "num_samples": o.num_samples, "face_model": face.name, "backend": backend,
        "pirender": net is not None, "denormalized": mean is not None,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(o).items()},
        "items": [asdict(i) for i in items], "realism": realism,
        "seconds": round(time.monotonic() - t0, 2),
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    return summary


def _face_and_renderer(o: RenderOptions, device: torch.device) -> tuple[Any, Any, str]:
    from orchestrator.render.backends import make_renderer
    from orchestrator.render.raster import RasterSettings

    rot = tuple(float(x) for x in o.rotation_offset)
    if o.faceverse:
        from orchestrator.render.faceverse import load_faceverse

        face = load_faceverse(o.faceverse, identity=o.faceverse_identity, rotation_offset=rot)
    else:
        from orchestrator.render.procedural import procedural_face

        face = procedural_face(expression_scale=o.expression_scale, rotation_offset=rot)
    renderer, backend = make_renderer(o.backend, RasterSettings(image_size=o.image_size,
                                                                supersample=o.supersample))
    return face.to(device), renderer, backend


def _photoreal(o: RenderOptions, net: Any, item: _Item, d: Path, out: Path,
               lis_video: np.ndarray | None, real_coef: np.ndarray | None,
               gen_coef: np.ndarray, j: int, t: int, bar: Any) -> np.ndarray:
    """PIRender frames: [real video] | real coefficients | generated 1..K; returns gen 1's."""
    from orchestrator.render.pirender import load_reference, render_frames

    if o.reference:
        ref = load_reference(o.reference, o.image_size)
    elif lis_video is not None:
        ref = load_reference(lis_video[0], o.image_size)
    else:
        raise ValueError("PIRender needs a reference portrait: set render.reference=<image> or "
                         "render.video_root=<MARS tree> (the real listener's first frame)")
    tiles, labels = ([lis_video], ["listener (video)"]) if lis_video is not None else ([], [])
    if real_coef is not None:
        tiles.append(render_frames(net, ref, real_coef[j]))
        labels.append("listener (real 3DMM)")
    bar.update(1)
    first = None
    for k in range(o.num_samples):
        frames = render_frames(net, ref, gen_coef[j, k])
        first = frames if first is None else first
        tiles.append(frames)
        labels.append(f"generated {k + 1}")
        bar.update(1)
    video = mosaic_frames(tiles, labels, columns=min(len(tiles), 6))
    item.files["pirender_mp4"] = _rel(write_mp4(d / "pirender.mp4", video, o.fps), out)
    return first


def _realism(gen_attr: np.ndarray, appropriate: list[np.ndarray], extractor: Any,
             real: list[np.ndarray], fake: list[np.ndarray], fid_dir: Path | None
             ) -> dict[str, dict[str, Any]]:
    from metrics import frrea_features

    out = {"FRRea_features": {"value": float(frrea_features(gen_attr, appropriate)),
                              "label": fid_mod.FRREA_FEAT_LABEL}}
    if real and fid_dir is not None:
        for name, frames in (("real", real), ("fake", fake)):
            for i, f in enumerate(np.concatenate(frames)):
                _write_png(fid_dir / "fid" / name / f"{i:05d}.png", f, fid_dir)
    if extractor is not None and real:
        value = fid_mod.fid(extractor, np.concatenate(real), np.concatenate(fake), stride=1)
        out["FRRea"] = {"value": value, "label": fid_mod.FID_LABEL,
                        "frames": int(sum(len(r) for r in real))}
    return out


def _write_png(path: Path, image: np.ndarray, root: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(image))
    return _rel(path, root)


def _rel(path: Path, root: Path) -> str:
    return str(Path(path).relative_to(root))


def run_render_job(bundle: str | Path, data_uri: str, options: RenderOptions | None = None, *,
                   out_dir: str | Path | None = None,
                   storage_options: dict[str, Any] | None = None, num_cpus: float = 1.0,
                   num_gpus: float = 0.0) -> dict[str, Any]:
    """`render` as its own Ray task (Ray must be initialised; the CLI's ``init_ray`` does).

    The task writes on the node it runs on: on a multi-node cluster give an ``out_dir`` on
    shared storage. With ``num_gpus > 0`` the task renders on CUDA.
    """
    import ray

    if not ray.is_initialized():
        raise RuntimeError("run_render_job needs a running Ray (orchestrator.runtime.init_ray) "
                           "or call orchestrator.render_stage.render directly")
    o = options or RenderOptions()
    if num_gpus > 0:
        o = replace(o, device="cuda")
    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=0)(render)
    out = str(Path(out_dir).resolve()) if out_dir else None
    return ray.get(task.remote(str(Path(bundle).resolve()), data_uri, o, out_dir=out,
                               storage_options=storage_options))


def render_from_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """``reactune stage=render bundle=<path> [render.speakers=[0,3]] ...`` on a resolved config.

    Reads ``bundle``, ``data.uri``, ``data.endpoint_url``, ``resources.gpu_per_trial`` and the
    ``render`` mapping (`RenderOptions` fields plus ``out_dir``).
    """
    if not cfg.get("bundle"):
        raise ValueError("stage=render needs bundle=<model bundle .pt> (written by stage=export)")
    r = dict(cfg.get("render") or {})
    out_dir = r.pop("out_dir", None)
    options = RenderOptions.from_mapping(r)
    endpoint = (cfg.get("data") or {}).get("endpoint_url")
    gpus = float((cfg.get("resources") or {}).get("gpu_per_trial") or 0)
    return run_render_job(cfg["bundle"], cfg["data"]["uri"], options, out_dir=out_dir,
                          storage_options={"endpoint_url": endpoint} if endpoint else None,
                          num_gpus=1.0 if gpus > 0 else 0.0)
