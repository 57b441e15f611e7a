"""Compose the reactune config from `orchestrator/conf/` and explain bad overrides.

Every stage takes a composed ``DictConfig``; the CLI (Hydra's app) and the tests both get it from
:func:`compose`, which checks each override first so that a typo fails with the key, the values
or keys allowed there, and the YAML file to look in, instead of Hydra's bare composition error.

Trials receive the base config as a plain dict plus the sampled parameters, whose names are Hydra
override paths (``baseline.trainer.lr``); :func:`apply_params` merges them back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, ValueNode

from orchestrator.storage_io import absolute

CONF_DIR = Path(__file__).resolve().parent / "conf"
# How error messages name config files: relative to the source tree (orchestrator/conf/...).
_SHOWN_ROOT = CONF_DIR.parents[1]
CONFIG_NAME = "config"
# Groups that only the defaults list selects (not user-facing knobs).
_INTERNAL_GROUPS = ("baseline_size",)


class ConfigError(ValueError):
    """A bad override or config value: the message names the key, what is allowed and the file."""


def groups() -> list[str]:
    """Config groups a user can choose (``<group>=<option>`` on the command line)."""
    return sorted(p.name for p in CONF_DIR.iterdir()
                  if p.is_dir() and p.name not in _INTERNAL_GROUPS)


def group_options(group: str) -> list[str]:
    """Options of config group ``group``: the YAML file stems in ``conf/<group>/``."""
    folder = CONF_DIR / group
    if not folder.is_dir():
        raise ConfigError(f"no config group {group!r}; groups: {', '.join(groups())} "
                          f"(folders of {_shown(CONF_DIR)}/)")
    return sorted(p.stem for p in folder.glob("*.yaml"))


def default_choices() -> dict[str, str | None]:
    """The group choices of ``config.yaml``'s defaults list (before any override)."""
    primary = OmegaConf.to_container(OmegaConf.load(CONF_DIR / f"{CONFIG_NAME}.yaml"),
                                     resolve=False)
    choices: dict[str, str | None] = {}
    for entry in primary.get("defaults", []):
        if isinstance(entry, dict):
            for key, value in entry.items():
                group = str(key).replace("optional ", "").split("@")[0].strip()
                if group in groups():
                    choices[group] = value
    return choices


def compose(overrides: Iterable[str] = (), *, check: bool = True) -> DictConfig:
    """Compose the reactune config with Hydra's compose API.

    Args:
        overrides: Hydra overrides, e.g. ``["baseline=perfrdiff", "search.num_samples=4"]``.
        check: validate every override first (unknown groups, options and keys raise
            :class:`ConfigError` naming the key, the allowed values and the file to look in).

    Returns:
        The composed config (struct mode: unknown keys raise on access), without the ``hydra``
        node.

    Raises:
        ConfigError: a bad override.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    overrides = list(overrides)
    if check:
        _check_overrides(overrides)
    try:
        if GlobalHydra.instance().is_initialized():  # inside the `reactune` Hydra app
            return hydra_compose(CONFIG_NAME, overrides=overrides)
        with initialize_config_dir(str(CONF_DIR), version_base="1.3", job_name="reactune"):
            return hydra_compose(CONFIG_NAME, overrides=overrides)
    except (HydraException, ValueError) as e:
        raise ConfigError(f"{e}\n(overrides: {' '.join(overrides) or 'none'}; config files in "
                          f"{_shown(CONF_DIR)}/)") from e


def _check_overrides(overrides: Sequence[str]) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as e:
        raise ConfigError(f"cannot parse overrides {list(overrides)}: {e}; write key=value or "
                          f"group=option, e.g. baseline=perfrdiff search.num_samples=8") from e
    known_groups = groups()
    choices = default_choices()
    group_lines, key_overrides = [], []
    for o in parsed:
        key = o.key_or_group
        if key.startswith("hydra.") or key == "hydra":
            continue
        if key in known_groups and o.package is None:
            value = o.value()
            options = group_options(key)
            if value not in options:
                unset = f"; drop the group with ~{key}" if value is None else ""
                raise ConfigError(
                    f"{key}={o.input_line.split('=', 1)[-1]}: no such option for config group "
                    f"{key!r}; allowed: {', '.join(options)} (one YAML file each in "
                    f"{_shown(CONF_DIR / key)}/){unset}")
            choices[key] = value
            group_lines.append(o.input_line)
        elif not (o.is_add() or o.is_force_add() or o.is_delete()):
            key_overrides.append((key, o.value()))
    if not key_overrides:
        return
    base = compose(group_lines, check=False)
    for key, value in key_overrides:
        node = _check_key(base, key, choices)
        _check_type(key, node, value, choices)


def _check_type(key: str, node: Any, value: Any, choices: Mapping[str, str | None]) -> None:
    """Reject a value whose type cannot replace the YAML default (e.g. ``epochs=abc``)."""
    if not isinstance(node, ValueNode) or node._is_interpolation():
        return
    current = node._value()
    if current is None or value is None or isinstance(current, str):
        return
    if isinstance(current, bool):
        ok = isinstance(value, bool)
    elif isinstance(current, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(current, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = True
    if not ok:
        raise ConfigError(
            f"{key}={value!r}: expected a {type(current).__name__} like the default "
            f"{current!r}, got {type(value).__name__}; see {_shown(config_file_for(key, choices))}")


def _check_key(cfg: DictConfig, key: str, choices: Mapping[str, str | None]) -> Any:
    node: Any = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        if isinstance(node, DictConfig) and part in node:
            node = node._get_node(part)
            continue
        if isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
            node = node._get_node(int(part))
            continue
        parent = ".".join(parts[:i]) or "<top level>"
        allowed = sorted(str(k) for k in node.keys()) if isinstance(node, DictConfig) else []
        raise ConfigError(
            f"unknown config key {key!r}: {parent} has no {part!r}; allowed keys there: "
            f"{', '.join(allowed) or '(none: it is a value, not a section)'}; look in "
            f"{_shown(config_file_for(key, choices))}")
    return node


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(_SHOWN_ROOT))
    except ValueError:
        return str(path)


def config_file_for(key: str, choices: Mapping[str, str | None] | None = None) -> Path:
    """The YAML file that defines ``key`` (its group's chosen option, else ``config.yaml``)."""
    choices = dict(default_choices()) | dict(choices or {})
    group = key.split(".")[0]
    if group in choices and choices[group] is not None:
        return CONF_DIR / group / f"{choices[group]}.yaml"
    return CONF_DIR / f"{CONFIG_NAME}.yaml"


def apply_params(base: Mapping[str, Any] | DictConfig, params: Mapping[str, Any]) -> DictConfig:
    """Set sampled parameters (Hydra override paths -> values) on a copy of ``base``.

    Args:
        base: the composed config (or its unresolved plain-dict form).
        params: e.g. ``{"baseline.trainer.lr": 3e-4, "task.window_size": 8}``.

    Returns:
        A new struct config; interpolations (``${task.window_size}``) are still live.

    Raises:
        ConfigError: a parameter names a key the config does not have.
    """
    cfg = OmegaConf.create(OmegaConf.to_container(base, resolve=False)
                           if isinstance(base, DictConfig) else dict(base))
    OmegaConf.set_struct(cfg, True)
    for key, value in params.items():
        _check_key(cfg, key, {})
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def as_overrides(params: Mapping[str, Any]) -> list[str]:
    """Hydra override strings for ``params``: ``["baseline.trainer.lr=0.0003", ...]``."""
    out = []
    for key, value in params.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif value is None:
            text = "null"
        else:
            text = repr(value) if isinstance(value, float) else str(value)
        out.append(f"{key}={text}")
    return out


def to_plain(cfg: DictConfig, *, resolve: bool = True) -> dict[str, Any]:
    """The config as plain Python containers (what trials and bundles carry).

    Raises:
        ConfigError: a required value (``???``) was not given, or an interpolation is broken.
    """
    from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

    try:
        return OmegaConf.to_container(cfg, resolve=resolve, throw_on_missing=True)
    except MissingMandatoryValue as e:
        key, group = e.full_key, e.full_key.split(".")[0]
        where = _shown(CONF_DIR / group) + "/" if group in groups() else _shown(
            CONF_DIR / f"{CONFIG_NAME}.yaml")
        raise ConfigError(f"{key} is required (??? in the chosen file of {where}); pass "
                          f"{key}=... on the command line") from None
    except InterpolationResolutionError as e:
        raise ConfigError(f"cannot resolve {e.full_key}: {e.msg}") from None


def frozen_base(cfg: DictConfig) -> dict[str, Any]:
    """The config to hand to trials: interpolations kept, local paths made absolute.

    Keeping interpolations lets a sampled ``task.window_size`` reach
    ``baseline.model.window_size``; absolute paths let ``stage=resume`` run from anywhere.
    """
    base = to_plain(cfg, resolve=False)
    resolved = to_plain(cfg)
    base["paths"]["work_dir"] = os.path.abspath(resolved["paths"]["work_dir"])
    for section, key in (("data", "uri"), ("data", "root"), ("search", "storage_path")):
        value = resolved[section][key]
        if value is not None:
            base[section][key] = absolute(value)
    return base
