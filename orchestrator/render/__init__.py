"""Rendering: 3DMM faces (procedural head or FaceVerse), a torch z-buffer renderer (pytorch3d
when installed), PIRender, attribute plots, MP4 writing and FRRea.

The stage that uses them is `orchestrator.render_stage`; the HTML report is
`orchestrator.report`.
"""

from orchestrator.render.backends import make_renderer, pytorch3d_available
from orchestrator.render.face_model import FaceModel, denormalize, euler_matrix
from orchestrator.render.faceverse import load_faceverse
from orchestrator.render.fid import FID_LABEL, FRREA_FEAT_LABEL, frechet_distance
from orchestrator.render.pirender import FaceGenerator, load_pirender, load_reference
from orchestrator.render.procedural import EXPRESSION_NAMES, procedural_face
from orchestrator.render.raster import (
    LambertShader,
    MeshRasterizer,
    MeshRenderer,
    RasterSettings,
    ShaderSettings,
)
from orchestrator.render.video import count_frames, read_frames, write_mp4

__all__ = ["EXPRESSION_NAMES", "FID_LABEL", "FRREA_FEAT_LABEL", "FaceGenerator", "FaceModel",
           "LambertShader", "MeshRasterizer", "MeshRenderer", "RasterSettings", "ShaderSettings",
           "count_frames", "denormalize", "euler_matrix", "frechet_distance", "load_faceverse",
           "load_pirender", "load_reference", "make_renderer", "procedural_face",
           "pytorch3d_available", "read_frames", "write_mp4"]
