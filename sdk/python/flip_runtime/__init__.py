"""FLIP's runtime SDK: what a training workload uses to talk to its trust gateway (standard library only).

    from flip_runtime import Runtime, from_numpy, to_numpy

    rt = Runtime()
    cfg = rt.config()
    for rnd in rt.rounds():
        weights = to_numpy(rnd.weights) if rnd.weights else init()
        ...
        rt.metric("loss", loss, round=rnd.number, x=("epoch", epoch))
        rt.push_update(rnd.number, from_numpy(weights), samples=n)
"""

from .client import RuntimeCallError, RuntimeUnavailableError
from .runtime import Cohort, Config, Image, Round, Runtime
from .safetensors import SafetensorsError, Tensor, dumps, from_numpy, from_torch, load_file, loads, read_metadata, save_file, to_numpy, to_torch

__all__ = [
    "Cohort",
    "Config",
    "Image",
    "Round",
    "Runtime",
    "RuntimeCallError",
    "RuntimeUnavailableError",
    "SafetensorsError",
    "Tensor",
    "dumps",
    "from_numpy",
    "from_torch",
    "load_file",
    "loads",
    "read_metadata",
    "save_file",
    "to_numpy",
    "to_torch",
]
