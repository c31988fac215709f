"""Heavy libraries imported on first use, so that `toylab --help` and argument errors are quick.

`from toylab.lazy import torch` gives a stand-in module: the real `import torch` (1.5-2 s on
the project's 2-core machine) happens the first time an attribute is read, e.g. `torch.zeros`
or `isinstance(x, torch.Tensor)`; afterwards attribute reads cost what they cost on torch.
Modules whose every use of torch sits inside functions import it this way, so importing them
(the CLI does, to build its parser and validate arguments) stays light.
"""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """A module that imports the real one on the first attribute read."""

    def __getattr__(self, name: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)  # later reads find the attributes directly
        return getattr(module, name)


def lazy(name: str) -> Any:
    """A stand-in for module `name`, imported when first used."""
    return LazyModule(name)


torch: Any = lazy("torch")
