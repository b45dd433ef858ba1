"""Parameter-efficient fine-tuning methods as plug-ins: SALT, S-SAM's SVD, LoRA, full and none.

``inject(model, method, target_modules, **options)`` swaps matching ``nn.Linear``/``nn.Conv2d`` modules
for adapter layers (or, for ``full``, makes them trainable); ``merge`` folds adapters back into plain
layers; ``save_adapter``/``load_adapter`` store only the trainable tensors. Each method lives in its own
module, registered in :data:`METHODS` under the name of its ``configs/peft/<method>.yaml``.
"""

import importlib
import pkgutil

from salt.peft.checkpoint import (
    AdapterError,
    adapter_state_dict,
    base_fingerprint,
    load_adapter,
    save_adapter,
)
from salt.peft.counting import adapter_ranks, count_adapter_parameters
from salt.peft.layer import AdapterLayer, adapter_layers
from salt.peft.merge import merge
from salt.peft.registry import METHODS, inject, inject_from_config, injections, register, regularization

# Method modules register themselves on import; importing every module of the package here means a new
# method is added by adding its file alone.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "METHODS",
    "AdapterError",
    "AdapterLayer",
    "adapter_layers",
    "adapter_ranks",
    "adapter_state_dict",
    "base_fingerprint",
    "count_adapter_parameters",
    "inject",
    "inject_from_config",
    "injections",
    "load_adapter",
    "merge",
    "register",
    "regularization",
    "save_adapter",
]
