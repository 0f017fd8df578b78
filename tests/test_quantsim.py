"""Quantization-aware training: the simulated rounding, its context, and a run that uses it."""

from __future__ import annotations

import json

import pytest
import torch

from bprefine import load_model
from bprefine.engine import onnx_available
from bprefine.model import WEIGHTS_DIR
from bprefine.nets import PRESETS, build_net
from bprefine.quantize import calibration_batches
from bprefine.training import TrainConfig, train
from bprefine.training.quantsim import RANGES_FILE, QuantSim, fake_quant_activation, fake_quant_weight
from test_training import _synthetic_source, _tiny_config


def test_weights_round_per_channel_to_127_steps_and_ignore_a_folded_scale():
    w = torch.randn(8, 4, 3, 3, generator=torch.Generator().manual_seed(0))
    q = fake_quant_weight(w)
    scale = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
    steps = q / scale
    assert torch.allclose(steps, steps.round(), atol=1e-4)  # on the int8 grid of its own channel
    assert torch.allclose(q.abs().amax(dim=(1, 2, 3)), w.abs().amax(dim=(1, 2, 3)))  # the extreme is exact
    assert (q - w).abs().max() <= scale.max() / 2 + 1e-6
    s = torch.tensor([0.5, 2.0, 3.0, 0.1, 1.0, 7.0, 0.3, 4.0]).view(8, 1, 1, 1)  # a BatchNorm folded in
    assert torch.allclose(fake_quant_weight(w * s) / s, q, atol=1e-5)


def test_activations_round_to_255_steps_over_a_range_that_holds_zero():
    x = torch.linspace(-1.0, 5.0, 1000)
    q = fake_quant_activation(x, 0.5, 4.0)  # the range is widened to [0, 4]: 0 stays exact
    assert q.min() == 0 and q.max() == pytest.approx(4.0)
    assert len(torch.unique(q)) <= 256
    assert fake_quant_activation(torch.zeros(3), 0.5, 4.0).abs().max() == 0


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_net("mobilenet_v2", use_mask=True).eval()


def test_the_context_rounds_inside_and_restores_the_same_parameters_after():
    net = _net()
    x, m = torch.randn(2, 3, 64, 64), torch.rand(2, 1, 64, 64) - 0.5
    params = {n: p for n, p in net.named_parameters()}
    with torch.no_grad():
        before = net(x, m)
    sim = QuantSim()
    with sim.applied(net, observe=True):
        rounded = net(x, m)
    assert {n: id(p) for n, p in net.named_parameters()} == {n: id(p) for n, p in params.items()}
    assert all(isinstance(c.weight, torch.nn.Parameter) for c in net.modules() if isinstance(c, torch.nn.Conv2d))
    n_convs = sum(isinstance(c, torch.nn.Conv2d) for c in net.modules())
    assert len(sim.ranges) == n_convs
    assert not torch.equal(rounded, before)
    assert torch.corrcoef(torch.stack([rounded.flatten(), before.flatten()]))[0, 1] > 0.98
    rounded.sum().backward()  # after the context: the float parameters get the gradient
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in params.items() if "weight" in n)
    with torch.no_grad():
        assert torch.equal(net(x, m), before)
        frozen = dict(sim.ranges)
        with sim.applied(net, observe=False):
            again = net(x, m)
    assert sim.ranges == frozen and torch.allclose(again, rounded.detach(), atol=1e-5)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains_rounded_and_gets_its_own_weights_back(preset):
    torch.manual_seed(0)
    net = build_net(preset, use_mask=True).train()
    before = {n: (id(p), p.detach().clone()) for n, p in net.named_parameters()}
    x, m = torch.randn(2, 3, 64, 64), torch.rand(2, 1, 64, 64) - 0.5
    with QuantSim().applied(net, observe=True):
        out = net(x, m)
    assert out.shape == (2, 1, 64, 64) and torch.isfinite(out).all()
    out.mean().backward()
    for n, p in net.named_parameters():
        assert id(p) == before[n][0] and torch.equal(p.detach(), before[n][1])
    assert sum(p.grad is not None for p in net.parameters()) == len(before)


@pytest.mark.skipif(not onnx_available(), reason="onnx/onnxruntime not installed")
def test_the_simulation_is_closer_to_the_shipped_int8_network_than_float_is():
    import onnxruntime as ort

    model = load_model("default")
    net = model.net.eval()
    feeds = calibration_batches(model.config, limit=160)
    session = ort.InferenceSession(str(WEIGHTS_DIR / "default.int8.onnx"), providers=["CPUExecutionProvider"])
    batches = [(torch.from_numpy(f["image"]), torch.from_numpy(f["mask"])) for f in feeds]
    sim = QuantSim()
    sim.calibrate(net, batches)  # ranges from the patches the int8 network was calibrated on
    assert sim.momentum == 0.01
    fp32, rounded = sim.compare(net, batches)
    int8 = torch.cat([torch.from_numpy(session.run(None, f)[0]) for f in feeds])
    assert (rounded - int8).abs().mean() < (fp32 - int8).abs().mean()


def test_a_quantization_aware_run_records_it_and_resumes_exactly(tmp_path):
    torch.set_num_threads(1)
    source = _synthetic_source(tmp_path / "data")
    config = _tiny_config(source, quantization_aware=True, ema_decay=0.5)
    whole = train(config, tmp_path / "whole", progress=False)
    ranges = json.loads((tmp_path / "whole" / RANGES_FILE).read_text())
    assert len(ranges) == sum(isinstance(c, torch.nn.Conv2d) for c in whole.net.modules())
    assert load_model(tmp_path / "whole" / "final").config.provenance["quantization_aware"] is True
    train(config, tmp_path / "split", progress=False, stop_at=6)
    resumed = train(config, tmp_path / "split", progress=False)
    a, b = whole.net.state_dict(), resumed.net.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    plain = train(_tiny_config(source), tmp_path / "plain", progress=False)
    assert any(not torch.equal(v, plain.net.state_dict()[k]) for k, v in a.items() if v.is_floating_point())
    assert "quantization_aware" not in load_model(tmp_path / "plain" / "final").config.provenance


def test_the_config_takes_the_switch_and_rejects_a_misspelling():
    from bprefine.training.config import train_config_from_dict

    assert train_config_from_dict({"quantization_aware": True}).quantization_aware is True
    assert TrainConfig().quantization_aware is False
    with pytest.raises(ValueError, match="quantisation_aware"):
        train_config_from_dict({"quantisation_aware": True})
    with pytest.raises(ValueError):
        QuantSim(momentum=0)
