"""Run configurations recorded before every object was named by ``_target_``, read in today's form.

Earlier runs recorded the PEFT method as ``peft.method: <name>`` (and companions as ``method: <name>``), the
classic networks as ``model.family: classic`` with ``name`` and ``kwargs``, and SAM-family models without
``num_classes`` or a results-table ``tag``. :func:`upgrade_run_config` rewrites such a configuration into the
form ``configs/`` composes today, so eval.py, predict.py, export.py and the results tables read old run
folders and checkpoints through the same code as new ones. A configuration already in today's form is
returned unchanged (as a copy).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from salt import CONFIG_DIR
from salt.errors import ConfigError
from salt.peft.registry import METHODS

MODEL_CONFIGS = CONFIG_DIR / "model"
# The weights file names of the paper's backbone (SAM's official files) and its variant: runs recorded without
# a tag got none on that backbone, and otherwise the weights' name or the variant (the rule of that time).
_SAM_WEIGHTS_PREFIX = "sam_"
_PAPER_VARIANT = "vit_b"


def _upgrade_peft(peft: dict[str, Any], model: Mapping[str, Any]) -> dict[str, Any]:
    if "method" in peft and "_target_" not in peft:
        name = peft.pop("method")
        if name not in METHODS:
            raise ConfigError(
                f"recorded peft.method={name!r} is not a PEFT method; valid: {', '.join(METHODS)}"
            )
        cls = METHODS[name]
        peft = {"_target_": f"{cls.__module__}.{cls.__qualname__}", **peft}
        if name == "none":  # the old `none` method was named by the model's trainable groups
            peft.setdefault("trained_groups", list(model.get("trainable") or []))
    if peft.get("companions"):
        peft["companions"] = [_upgrade_peft(dict(c), model) for c in peft["companions"]]
    return peft


def _legacy_tag(model: Mapping[str, Any]) -> str:
    weights = Path(str(model.get("default_file") or "")).stem
    if weights and not weights.startswith(_SAM_WEIGHTS_PREFIX):
        return weights
    variant = model.get("variant")
    return "" if variant in (None, _PAPER_VARIANT) else str(variant)


def _upgrade_classic(model: dict[str, Any], dataset: Mapping[str, Any]) -> dict[str, Any]:
    # The network's config file today, with the recorded architecture settings and sizes.
    name = str(model.get("name") or model.get("variant"))
    path = MODEL_CONFIGS / f"{name}.yaml"
    if not path.is_file():
        # a network this version has no config for: named by its recorded name, and not buildable
        rest = {k: v for k, v in model.items() if k not in ("family", "name", "kwargs")}
        return {**rest, "title": name}
    current = OmegaConf.load(path)
    current.img_size = model.get("img_size")
    current.num_classes = dataset.get("num_classes")
    current.net.merge_with(model.get("kwargs") or {})
    for key in ("trainable", "paper_param_denominator"):
        if key in model:
            current[key] = model[key]
    return OmegaConf.to_container(OmegaConf.create({"model": current}), resolve=True)["model"]


def upgrade_run_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` (a recorded run configuration, a plain mapping) in today's form; see the module docstring.

    Only the ``model`` and ``peft`` groups change; a group the configuration lacks stays absent.

    Raises:
        ConfigError: a recorded method this version does not have.
    """
    config = copy.deepcopy(dict(config))
    model = dict(config.get("model") or {})
    if model.get("family") == "classic":
        config["model"] = _upgrade_classic(model, config.get("dataset") or {})
    elif "model" in config:
        model.pop("family", None)
        if "num_classes" not in model and "num_classes" in (config.get("dataset") or {}):
            model["num_classes"] = config["dataset"]["num_classes"]
        model.setdefault("tag", _legacy_tag(model))
        config["model"] = model
    if isinstance(config.get("peft"), Mapping):
        config["peft"] = _upgrade_peft(dict(config["peft"]), model)
    return config
