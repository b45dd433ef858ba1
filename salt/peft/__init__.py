"""Parameter-efficient fine-tuning methods as plug-ins: SALT, S-SAM's SVD, LoRA, full, none, and ``hf``
(any method of the Hugging Face peft package: DoRA, PiSSA, AdaLoRA, VeRA, OSF ...).

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
from salt.peft.counting import (
    adapter_parameter_names,
    adapter_ranks,
    added_parameter_names,
    count_adapter_parameters,
)
from salt.peft.layer import AdapterLayer, adapter_layers, adapter_modules, is_adapter_module
from salt.peft.merge import MergeError, merge
from salt.peft.registry import (
    METHODS,
    after_optimizer_step,
    inject,
    inject_from_config,
    injections,
    register,
    regularization,
    set_training_steps,
)

# Method modules register themselves on import; importing every module of the package here means a new
# method is added by adding its file alone.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "METHODS",
    "AdapterError",
    "AdapterLayer",
    "MergeError",
    "adapter_layers",
    "adapter_modules",
    "adapter_parameter_names",
    "adapter_ranks",
    "adapter_state_dict",
    "added_parameter_names",
    "after_optimizer_step",
    "base_fingerprint",
    "count_adapter_parameters",
    "inject",
    "inject_from_config",
    "injections",
    "is_adapter_module",
    "load_adapter",
    "merge",
    "register",
    "regularization",
    "save_adapter",
    "set_training_steps",
]
