"""Checkpoints with exact resume.

Everything an interrupted run needs to continue exactly where its last checkpoint left it is in
``last.safetensors`` (weights), ``last_optim.safetensors`` (momentum buffers), ``last_state.json``
(iteration) and ``last_rng_<rank>.json`` (each process's sampler state), plus ``last_average.safetensors``
when the run keeps a moving average of its weights (``average``). A checkpoint is complete once
``last_state.json`` is written, which happens last. ``iter_<N>`` holds the weights a run would ship at
iteration N: the moving average where there is one, else the trained weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from bprefine.data.images import atomic_path
from bprefine.model import RefinementModel, save_model


def save_rng(out: Path, rank: int, it: int, rng: np.random.Generator) -> None:
    with atomic_path(out / f"last_rng_{rank}.json") as tmp:
        tmp.write_text(json.dumps({"iteration": it, "rng": rng.bit_generator.state}))


def save_checkpoint(out: Path, model: RefinementModel, opt: torch.optim.Optimizer, it: int,
                    average: RefinementModel | None = None) -> None:
    """Weights as ``iter_<it>`` (``average``'s where given) and ``last`` (with ``last_average``),
    momentum buffers by parameter name, then the iteration."""
    save_model(average or model, out / f"iter_{it}")
    save_model(model, out / "last")
    if average is not None:
        save_model(average, out / "last_average")
    names = {id(p): n for n, p in model.net.named_parameters()}
    buffers = {names[id(p)]: s["momentum_buffer"].detach().cpu().contiguous()
               for p, s in opt.state.items() if s.get("momentum_buffer") is not None}
    with atomic_path(out / "last_optim.safetensors") as tmp:
        save_file(buffers, str(tmp))
    with atomic_path(out / "last_state.json") as tmp:
        tmp.write_text(json.dumps({"iteration": it}))


def resume_average(out: Path, net: torch.nn.Module) -> bool:
    """Load the last checkpoint's moving average into ``net``; False (``net`` untouched) if it has none."""
    path = out / "last_average.safetensors"
    if not (has_checkpoint(out) and path.is_file()):
        return False
    net.load_state_dict(load_file(str(path)))
    return True


def has_checkpoint(out: Path) -> bool:
    return (out / "last_state.json").is_file()


def resume(out: Path, net: torch.nn.Module, opt: torch.optim.Optimizer, rng: np.random.Generator, rank: int) -> int:
    """Load the last checkpoint in ``out`` into ``net``, ``opt`` and ``rng``; its iteration (0 if none)."""
    if not has_checkpoint(out):
        return 0
    state = json.loads((out / "last_state.json").read_text())
    net.load_state_dict(load_file(str(out / "last.safetensors")))
    buffers = load_file(str(out / "last_optim.safetensors"))
    params = dict(net.named_parameters())
    for name, buf in buffers.items():
        opt.state[params[name]]["momentum_buffer"] = buf.to(params[name].device)
    rng_state = json.loads((out / f"last_rng_{rank}.json").read_text())
    if rng_state["iteration"] != state["iteration"]:
        raise ValueError(f"{out}: sampler state of rank {rank} does not match the last checkpoint")
    rng.bit_generator.state = rng_state["rng"]
    return int(state["iteration"])
