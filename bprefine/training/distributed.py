"""Process-group setup for training: one process, or several under ``torchrun`` (gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    """This process's place in the run: rank, number of processes and the device it trains on."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def wrap(self, net: torch.nn.Module) -> torch.nn.Module:
        """``net`` for the training step: DDP-wrapped when several processes train."""
        if self.world == 1:
            return net
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)

    def prepare(self, net: torch.nn.Module) -> torch.nn.Module:
        """``net`` on this process's device, with SyncBatchNorm when several GPUs train."""
        net = net.to(self.device).train()
        if self.world > 1 and self.device.type == "cuda":
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        return net


def init_dist(device: str) -> Dist:
    """Read torchrun's environment (WORLD_SIZE, LOCAL_RANK) and join the process group if there is one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(device=torch.device(device))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device.startswith("cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    dev = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(dev)
    return Dist(dist.get_rank(), world, dev)
