import torch
from torch import nn

import blocks
from nas.mfi import calibrate_bn, mfi


def test_spiking_presets_are_multiplication_free():
    for name in ("tiny", "cifar_ablation_c60", "mlp_s"):
        model = blocks.build(name, image_size=32, num_classes=10, T=2)
        x = torch.randn(8, 3, 32, 32)
        report = mfi(calibrate_bn(model, x), x)
        assert report.ok, report.summary()
        assert not report.silent, report.summary()
        assert len(report.checked) > 5
        assert any("stem" in why for why in report.exempt.values())


def test_broken_model_fails_the_check():
    model = blocks.build("tiny", T=2)
    block = model.stages[1].blocks[0]
    real_token = block.token

    class RealValuedFeed(nn.Module):  # an FC fed by a normalisation, not by spikes
        def __init__(self):
            super().__init__()
            self.norm = nn.BatchNorm2d(24)
            self.inner = real_token

        def forward(self, x):
            T, B = x.shape[:2]
            z = self.norm(x.flatten(0, 1)).reshape(x.shape)
            return self.inner(z)

    block.token = RealValuedFeed()
    x = torch.randn(8, 3, 32, 32)
    report = mfi(calibrate_bn(model, x), x)
    assert not report.ok
    assert any(v.module.startswith("stages.1.blocks.0.token") for v in report.violations)
    assert "VIOLATED" in report.summary()


def test_snn_mlp_is_reported_not_mfi():
    model = blocks.build("snn_mlp_t", image_size=32, num_classes=10)
    report = mfi(model, torch.randn(2, 3, 32, 32))
    assert not report.ok and len(report.violations) > 10
