from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bprefine.nets import PRESETS, build_net
from bprefine.nets.common import Float32Conv2d


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("size", [64, 128, 256])
def test_preset_maps_4_channels_to_one_logit_map(preset, size):
    torch.manual_seed(0)
    net = build_net(preset).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, size, size), torch.randn(2, 1, size, size))
    assert out.shape == (2, 1, size, size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_use_mask_false_ignores_the_mask(preset):
    net = build_net(preset, use_mask=False).eval()
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a = net(image, torch.zeros(1, 1, 64, 64))
        b = net(image, torch.ones(1, 1, 64, 64))
    assert torch.equal(a, b)


def test_mask_channel_changes_the_output():
    torch.manual_seed(0)
    net = build_net("mobilenet_v2").eval()
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.equal(net(image, -torch.ones(1, 1, 64, 64)), net(image, torch.ones(1, 1, 64, 64)))


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown network preset"):
        build_net("vgg")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_backward_reaches_every_parameter(preset):
    torch.manual_seed(0)
    net = build_net(preset).train()
    image = torch.randn(2, 3, 64, 64, requires_grad=True)
    mask = torch.randn(2, 1, 64, 64, requires_grad=True)
    target = (torch.rand(2, 1, 64, 64) > 0.5).float()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(net(image, mask), target)
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, f"no gradient reaches {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    assert image.grad.abs().sum() > 0 and mask.grad.abs().sum() > 0  # both inputs matter
    params = [p.detach().clone() for p in net.parameters()]
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    assert any(not torch.equal(a, b) for a, b in zip(params, net.parameters()))


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_use_mask_false_has_no_mask_gradient(preset):
    net = build_net(preset, use_mask=False).train()
    mask = torch.randn(2, 1, 64, 64, requires_grad=True)
    net(torch.randn(2, 3, 64, 64), mask).sum().backward()
    assert mask.grad is None or mask.grad.abs().sum() == 0


def test_depthwise_convs_compute_in_float32_under_autocast() -> None:
    """Float32Conv2d: float32 arithmetic under CPU bf16 autocast, bf16 out; plain Conv2d otherwise."""
    torch.manual_seed(0)
    conv = Float32Conv2d(8, 8, 3, 2, 1, groups=8, bias=False)
    plain = nn.Conv2d(8, 8, 3, 2, 1, groups=8, bias=False)
    plain.load_state_dict(conv.state_dict())  # same keys and shapes
    x = torch.randn(2, 8, 16, 16).to(torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert y.dtype == torch.bfloat16
    expected = F.conv2d(x.detach().float(), conv.weight.detach(), stride=2, padding=1, groups=8).to(torch.bfloat16)
    assert torch.equal(y, expected)
    y.float().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16 and conv.weight.grad.dtype == torch.float32
    x32 = torch.randn(2, 8, 16, 16)
    assert torch.equal(conv(x32), plain(x32))


def test_mobilenet_depthwise_layers_are_float32_convs() -> None:
    net = build_net("mobilenet_v2")
    depthwise = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert depthwise and all(isinstance(m, Float32Conv2d) for m in depthwise)
    dense = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.groups == 1]
    assert dense and not any(isinstance(m, Float32Conv2d) for m in dense)


def test_fine_preset_grown_from_mobilenet_v2_computes_the_same_until_trained():
    """mobilenet_v2_fine holds every mobilenet_v2 weight; its added head starts at zero."""
    torch.manual_seed(0)
    base = build_net("mobilenet_v2").eval()
    fine = build_net("mobilenet_v2_fine")
    missing, unexpected = fine.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("fine.") for k in missing)
    fine.eval()
    image, mask = torch.randn(2, 3, 96, 96), torch.randn(2, 1, 96, 96)
    with torch.no_grad():
        assert torch.equal(base(image, mask), fine(image, mask))
        fine.fine[-1].weight.fill_(0.1)
        out = fine(image, mask)
    assert out.shape == (2, 1, 96, 96) and not torch.equal(base(image, mask), out)
