"""react_models: the REACT baselines as clean PyTorch models (no ray/optuna/hydra imports)."""

from react_models.base import ReactionModel, ReactionSample
from react_models.bundle import load_bundle, save_bundle
from react_models.registry import available, build, make_config, model_class, register

__all__ = ["ReactionModel", "ReactionSample", "available", "build", "load_bundle", "make_config",
           "model_class", "register", "save_bundle"]
