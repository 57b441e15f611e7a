"""Choose the mesh renderer: pytorch3d where it is installed, reactune's torch renderer otherwise.

pytorch3d has no wheel that imports with the CPU torch reactune pins, so on CPU machines (and in
CI) the torch renderer (`orchestrator.render.raster`) is used; GPU users who install pytorch3d
(per its own instructions) get its rasterizer with the same camera, light and colours. Both
return (T, H, W, 3) uint8 frames from a `FaceModel` and (T, 58) coefficients.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import torch

from orchestrator.render.face_model import FaceModel
from orchestrator.render.raster import MeshRenderer, RasterSettings, ShaderSettings

__all__ = ["BACKENDS", "Pytorch3DRenderer", "make_renderer", "pytorch3d_available"]

BACKENDS = ("auto", "torch", "pytorch3d")


def pytorch3d_available() -> bool:
    """Whether ``pytorch3d.renderer`` is importable here (not just present on disk)."""
    if importlib.util.find_spec("pytorch3d") is None:
        return False
    try:
        import pytorch3d.renderer  # noqa: F401
    except (ImportError, OSError):  # e.g. a CUDA build of pytorch3d under a CPU torch
        return False
    return True


class Pytorch3DRenderer:
    """The same scene through pytorch3d: FoV camera at (0, 0, distance), Gouraud shading.

    The field of view is FaceVerse's (``2 atan(112 / 1315)``), the light a directional light
    with the `ShaderSettings` ambient/diffuse; no specular, background from the settings. Not
    exercised by reactune's CI (pytorch3d does not install there): compare a frame with
    ``backend=torch`` once after installing it.
    """

    def __init__(self, raster: RasterSettings | None = None,
                 shader: ShaderSettings | None = None) -> None:
        from pytorch3d.renderer import (
            BlendParams,
            DirectionalLights,
            FoVPerspectiveCameras,
            HardGouraudShader,
            MeshRasterizer,
            RasterizationSettings,
            look_at_view_transform,
        )
        from pytorch3d.renderer import MeshRenderer as P3DMeshRenderer

        self.raster_settings = raster or RasterSettings()
        s = shader or ShaderSettings()
        r = self.raster_settings
        rot, trans = look_at_view_transform(r.camera_distance, 0.0, 0.0)
        fov = math.degrees(2 * math.atan(112.0 / r.focal))
        self._parts = (rot, trans, fov, s, BlendParams(background_color=s.background))
        self._classes = (DirectionalLights, FoVPerspectiveCameras, HardGouraudShader,
                         MeshRasterizer, RasterizationSettings, P3DMeshRenderer)

    def _renderer(self, device: torch.device):
        (lights_cls, camera_cls, shader_cls, rasterizer_cls, settings_cls,
         renderer_cls) = self._classes
        rot, trans, fov, s, blend = self._parts
        r = self.raster_settings
        cameras = camera_cls(fov=fov, degrees=True, R=rot, T=trans, device=device)
        lights = lights_cls(direction=[s.light_direction], ambient_color=[[s.ambient] * 3],
                            diffuse_color=[[s.diffuse] * 3], specular_color=[[0.0] * 3],
                            device=device)
        settings = settings_cls(image_size=r.image_size * r.supersample, blur_radius=0.0,
                                faces_per_pixel=1)
        return renderer_cls(rasterizer=rasterizer_cls(cameras=cameras, raster_settings=settings),
                            shader=shader_cls(device=device, cameras=cameras, lights=lights,
                                              blend_params=blend))

    @torch.no_grad()
    def __call__(self, model: FaceModel, coef: torch.Tensor | np.ndarray) -> np.ndarray:
        from pytorch3d.renderer import TexturesVertex
        from pytorch3d.structures import Meshes

        device = model.mean.device
        renderer = self._renderer(device)
        coef = torch.as_tensor(np.asarray(coef), dtype=torch.float32, device=device)
        out, r = [], self.raster_settings
        for s in range(0, coef.shape[0], r.chunk_frames):
            verts = model(coef[s:s + r.chunk_frames])
            n = verts.shape[0]
            mesh = Meshes(verts=verts, faces=model.faces.expand(n, -1, -1),
                          textures=TexturesVertex(model.colors.expand(n, -1, -1)))
            image = renderer(mesh)[..., :3]
            if r.supersample > 1:
                image = torch.nn.functional.avg_pool2d(image.permute(0, 3, 1, 2),
                                                       r.supersample).permute(0, 2, 3, 1)
            out.append((image * 255 + 0.5).clamp(0, 255).to(torch.uint8).cpu().numpy())
        return np.concatenate(out)


def make_renderer(backend: str = "auto", raster: RasterSettings | None = None,
                  shader: ShaderSettings | None = None) -> tuple[object, str]:
    """A renderer and the name of the backend chosen.

    Args:
        backend: "auto" (pytorch3d if importable, else torch), "torch" or "pytorch3d".
        raster: camera/rasterisation settings.
        shader: lighting settings.

    Returns:
        (renderer, "torch" | "pytorch3d"); the renderer is called as
        ``renderer(face_model, coef) -> (T, H, W, 3) uint8``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"render backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "pytorch3d" and not pytorch3d_available():
        raise ValueError("render.backend=pytorch3d but pytorch3d does not import here (it has "
                         "no wheel for the CPU torch); install it per its docs on a GPU machine "
                         "or use render.backend=torch")
    if backend == "pytorch3d" or (backend == "auto" and pytorch3d_available()):
        return Pytorch3DRenderer(raster, shader), "pytorch3d"
    return MeshRenderer(raster, shader), "torch"
