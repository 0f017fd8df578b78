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
