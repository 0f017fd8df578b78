"""Checkpoints with exact resume.

Everything an interrupted run needs to continue exactly where its last checkpoint left it is in
``last.safetensors`` (weights), ``last_optim.safetensors`` (momentum buffers), ``last_state.json``
(iteration) and ``last_rng_<rank>.json`` (each process's sampler state). A checkpoint is complete
once ``last_state.json`` is written, which happens last.
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


def save_checkpoint(out: Path, model: RefinementModel, opt: torch.optim.Optimizer, it: int) -> None:
    """Weights as ``iter_<it>`` and ``last``, momentum buffers by parameter name, then the iteration."""
    save_model(model, out / f"iter_{it}")
    save_model(model, out / "last")
    names = {id(p): n for n, p in model.net.named_parameters()}
    buffers = {names[id(p)]: s["momentum_buffer"].detach().cpu().contiguous()
               for p, s in opt.state.items() if s.get("momentum_buffer") is not None}
    with atomic_path(out / "last_optim.safetensors") as tmp:
        save_file(buffers, str(tmp))
    with atomic_path(out / "last_state.json") as tmp:
        tmp.write_text(json.dumps({"iteration": it}))


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
