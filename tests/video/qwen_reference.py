"""qwen-vl-utils' own `vision_process` (a test dependency, 0.0.14), importable without torchvision.

qwen-vl-utils imports torchvision at module level, and torchvision must never be installed here (its
only wheel is a CUDA build that breaks transformers). Its rules need none of it: `smart_resize` and
`smart_nframes` are pure, the decord reader uses torch and decord, and the one torchvision call in
`fetch_video` is the bicubic resize, which torchvision implements with
`torch.nn.functional.interpolate(mode="bicubic", antialias=True)`. So a stand-in module with that
one function is put in `sys.modules` for the import only, and taken out again at once, so that
nothing else (transformers) ever sees a torchvision.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from typing import Any

import pytest

_MODULES = ("torchvision", "torchvision.io", "torchvision.transforms", "torchvision.transforms.functional")


def _resize(video, size, interpolation=None, antialias=True):  # torchvision.transforms.functional.resize
    import torch

    uint8 = video.dtype == torch.uint8
    out = torch.nn.functional.interpolate(
        video.float(), size=list(size), mode="bicubic", align_corners=False, antialias=antialias
    )
    return out.round().clamp(0, 255).to(torch.uint8) if uint8 else out


def _stand_in() -> dict[str, types.ModuleType]:
    modules = {name: types.ModuleType(name) for name in _MODULES}
    for name, module in modules.items():
        module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None)
    root, io, transforms, functional = (modules[n] for n in _MODULES)
    root.__version__ = "0.0.0+stand-in"
    root.io, root.transforms = io, transforms

    def read_video(*args: Any, **kwargs: Any):
        raise RuntimeError("the torchvision stand-in cannot read videos")

    io.read_video = read_video
    transforms.functional = functional
    transforms.InterpolationMode = types.SimpleNamespace(BICUBIC="bicubic", BILINEAR="bilinear")
    functional.resize = _resize
    return modules


def load() -> types.ModuleType:
    """`qwen_vl_utils.vision_process`, imported with the stand-in (skips when not installed)."""
    if "qwen_vl_utils.vision_process" in sys.modules:
        return sys.modules["qwen_vl_utils.vision_process"]
    if importlib.util.find_spec("qwen_vl_utils") is None:
        pytest.skip("qwen-vl-utils is not installed (pip install -e '.[dev]' installs it)")
    stand_in = _stand_in()
    saved = {name: sys.modules.get(name) for name in _MODULES}
    sys.modules.update(stand_in)
    try:
        module = importlib.import_module("qwen_vl_utils.vision_process")
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return module
