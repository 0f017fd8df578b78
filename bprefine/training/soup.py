"""A weighted average of the weights of networks fine-tuned from one start (a "model soup").

Fine-tunes of one network with different recipes (a loss, a patch size, quantization-aware steps) stay in
one basin of the loss, so the average of their weights is itself a network, often better or steadier
than any one of them, at the cost of none: it runs exactly as fast as each ingredient. Every
floating-point parameter and buffer (BatchNorm running statistics included) is averaged with the given
weights; integer buffers (``num_batches_tracked``) take the first ingredient's value. The ingredients
must share the preset, ``use_mask`` and every tensor's name and shape; the soup takes the first
ingredient's config (input and patch size, guards), so the first one names how the soup is run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from bprefine.model import RefinementModel


def _check_compatible(models: Sequence[RefinementModel], names: Sequence[str]) -> None:
    """ValueError naming the ingredient that differs from the first in preset, use_mask or a tensor."""
    first = models[0].net.state_dict()
    for model, name in zip(models[1:], names[1:]):
        if (model.config.preset, model.config.use_mask) != (models[0].config.preset, models[0].config.use_mask):
            raise ValueError(f"{name}: preset {model.config.preset!r} (use_mask {model.config.use_mask}) differs "
                             f"from {names[0]}'s {models[0].config.preset!r} (use_mask {models[0].config.use_mask})")
        state = model.net.state_dict()
        if set(state) != set(first):
            missing = sorted(set(first) ^ set(state))[:3]
            raise ValueError(f"{name}: its tensors differ from {names[0]}'s (e.g. {missing})")
        for key, value in state.items():
            if value.shape != first[key].shape:
                raise ValueError(f"{name}: tensor {key} has shape {tuple(value.shape)}, "
                                 f"{names[0]} has {tuple(first[key].shape)}")


def normalised_shares(weights: Sequence[float] | None, n: int) -> list[float]:
    """The ``n`` shares a soup gives its ingredients: ``weights`` scaled to sum to 1 (None: equal); ValueError
    unless they are ``n`` non-negative numbers with a positive sum."""
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n or any(not w >= 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"soup weights must be {n} non-negative numbers with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


@torch.no_grad()
def average_models(models: Sequence[RefinementModel], weights: Sequence[float] | None = None,
                   names: Sequence[str] | None = None) -> RefinementModel:
    """The weighted average of ``models`` (weights normalised to sum to 1; None: equal), as a new model with
    the first ingredient's config; ``names`` (for errors) default to ``model 0``, ``model 1``, ...
    ValueError when no model is given or the networks differ in architecture."""
    if not models:
        raise ValueError("a soup needs at least one model")
    names = list(names) if names is not None else [f"model {i}" for i in range(len(models))]
    _check_compatible(models, names)
    shares = normalised_shares(weights, len(models))
    states = [m.net.state_dict() for m in models]
    soup = RefinementModel.untrained(replace(models[0].config))
    averaged = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            acc = sum(share * state[key].double() for share, state in zip(shares, states))
            averaged[key] = acc.to(value.dtype)
        else:
            averaged[key] = value.clone()
    soup.net.load_state_dict(averaged)
    soup.net.eval()
    return soup
