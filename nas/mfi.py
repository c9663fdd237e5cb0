"""Multiplication-free inference (MFI) check (its command line: ``python -m nas.verify``).

Every Linear/Conv of a spiking network must read binary spikes (so that inference needs
additions only), except modules that declare why they are exempt through an ``mfi_exempt``
attribute (the stem reads the image; the classifier reads spike means that fold into it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Violation:
    module: str
    nonbinary_fraction: float  # share of input values not in {0, 1}
    example: float


@dataclass
class MFIReport:
    checked: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    exempt: dict[str, str] = field(default_factory=dict)
    silent: list[str] = field(default_factory=list)  # layers that saw no spike at all

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        head = (f"MFI {'holds' if self.ok else 'VIOLATED'}: {len(self.checked)} FC/conv layers "
                f"checked, {len(self.violations)} read non-binary inputs, "
                f"{len(self.exempt)} exempt, {len(self.silent)} saw no spike")
        lines = [head]
        lines += [f"  {v.module}: {v.nonbinary_fraction:.1%} non-binary (e.g. {v.example:.4g})"
                  for v in self.violations]
        lines += [f"  exempt {name}: {why}" for name, why in self.exempt.items()]
        return "\n".join(lines)


def exemption(model: nn.Module) -> dict[str, str]:
    """Modules marked exempt, and everything inside them."""
    out: dict[str, str] = {}
    for name, mod in model.named_modules():
        why = getattr(mod, "mfi_exempt", None)
        if why:
            for sub, _ in mod.named_modules(prefix=name):
                out[sub] = why
    return out


@torch.no_grad()
def calibrate_bn(model: nn.Module, images: torch.Tensor, steps: int = 2) -> nn.Module:
    """Set every BatchNorm's running statistics to their exact average over ``steps``
    forward passes on ``images``, so that an untrained network fires in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    was_training = model.training
    model.train()
    for _ in range(steps):
        model(images)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    model.train(was_training)
    return model


@torch.no_grad()
def mfi(model: nn.Module, images: torch.Tensor) -> MFIReport:
    """Run ``model`` on ``images`` (eval mode) and report every FC/conv whose input is not
    binary. Reports, never raises: non-MFI designs (SNN-MLP) get a list of violations.
    A layer that sees only zeros passes trivially and is listed in ``silent``: warm up
    BatchNorm statistics (or load trained weights) before trusting the check."""
    report = MFIReport()
    exempt = exemption(model)
    handles = []

    def hook(name):
        def check(_mod, inputs):
            x = inputs[0].detach().float()
            if not x.any():
                report.silent.append(name)
            bad = (x != 0) & (x != 1)
            if bad.any():
                report.violations.append(
                    Violation(name, bad.float().mean().item(), x[bad].flatten()[0].item()))
        return check

    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            if name in exempt:
                report.exempt[name] = exempt[name]
                continue
            report.checked.append(name)
            handles.append(mod.register_forward_pre_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        model(images)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return report
