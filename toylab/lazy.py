"""Heavy libraries imported on first use, so that `toylab --help` and argument errors are quick.

`from toylab.lazy import torch` gives a stand-in module: the real `import torch` (1.5-2 s on
the project's 2-core machine) happens the first time an attribute is read, e.g. `torch.zeros`
or `isinstance(x, torch.Tensor)`; afterwards attribute reads cost what they cost on torch.
Modules whose every use of torch sits inside functions import it this way, so importing them
(the CLI does, to build its parser and validate arguments) stays light.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any


class LazyModule(types.ModuleType):
    """A module that imports the real one on the first attribute read."""

    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_on_import"] = []

    def __getattr__(self, name: str) -> Any:
        pending = self.__dict__.get("_on_import", [])
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)  # later reads find the attributes directly
        self.__dict__["_on_import"] = []
        for fn in pending:
            fn(module)
        return getattr(module, name)


def when_imported(stand_in: Any, fn: Callable[[Any], None]) -> None:
    """Call fn(module) now if the real module is loaded, else right after it is imported."""
    module = sys.modules.get(stand_in.__name__)
    if module is not None and not isinstance(module, LazyModule):
        fn(module)
    else:
        stand_in.__dict__["_on_import"].append(fn)


def lazy(name: str) -> Any:
    """A stand-in for module `name`, imported when first used."""
    return LazyModule(name)


torch: Any = lazy("torch")


def is_torch(value: Any, kind: str = "Tensor") -> bool:
    """isinstance(value, torch.<kind>) without importing torch: nothing can be a tensor (or a
    torch Generator) before torch has been imported, so an unloaded torch answers False. The
    CPU path keeps its arrays in numpy and never pays torch's import."""
    module = sys.modules.get("torch")
    if module is None or isinstance(module, LazyModule):
        return False
    cls = getattr(module, kind, None)
    return cls is not None and isinstance(value, cls)


def as_numpy(value: Any) -> Any:
    """A numpy view (CPU) or copy (GPU) of a tensor; anything else unchanged."""
    return value.detach().cpu().numpy() if is_torch(value) else value
