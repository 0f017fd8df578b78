from __future__ import annotations

import pytest
import torch

from bprefine.nets import PRESETS, build_net


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
