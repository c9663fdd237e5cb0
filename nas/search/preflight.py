"""Is this machine ready to search? The checks ``python -m nas.doctor`` runs, in seconds:
one registered :class:`Check` each, run in the order they are registered.

* ``versions``: Python and the packages the project runs on;
* ``devices``: the GPUs torch sees (name, compute capability, memory), or the CPU;
* ``backends``: which neuron backends can run on the device, what ``auto`` picks there,
  and whether each one agrees with the ``torch`` reference on a small random input (LIF
  and PLIF, fp32 and bf16: identical spikes, close gradients). On a GPU, ``auto`` falling
  back to ``torch`` (no fused kernel usable) is a failure: the run would be slow;
* ``compilers``: Triton (ahead of time, a representative set of kernel variants) and NVRTC
  (the CuPy source) for this GPU's architecture; with no GPU, for sm_90;
* ``ray``: the CPUs and GPUs a local Ray (or the given address) sees; on a GPU machine a
  Ray that sees no GPU is a failure;
* ``storage``: whether the study's storage URL opens.

A check returns its one line, or raises :class:`CheckFailed` with one line. A new check is
one class here with ``@register_check``; ``tests/test_doctor.py`` runs every member.
"""
from __future__ import annotations

import os
import platform
import re
import time
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, ClassVar

import torch

from blocks.errors import NasError
from blocks.neurons import BACKENDS, LIF, PLIF, aot
from blocks.neurons.backends import BackendFallbackWarning, resolve, why_not

from ..registry import Registry


class CheckFailed(NasError):
    """A check failed; the message is one line."""


@dataclass
class Machine:
    """What to check: the device, and where Ray and the storage are (None: not given)."""
    device: torch.device
    ray_address: str | None = None
    storage_url: str | None = None
    ray: bool = True  # False: skip the Ray check (it starts Ray: ~5 s)


class Check(ABC):
    name: ClassVar[str]
    needs_device: ClassVar[bool] = True  # meaningless when the device asked for is missing

    @abstractmethod
    def run(self, machine: Machine) -> str:
        """One line on what was found; raises :class:`CheckFailed` with one line."""


CHECKS: Registry = Registry("check")  # name -> Check, run in this order
register_check = CHECKS.register


def run_checks(machine: Machine, show: Callable[[str, str | None, str], None]) -> list[tuple[str, str]]:
    """Every check in order; ``show(name, failure or None, line)`` after each. Returns the
    failures ``(name, reason)``; when the device check fails, nothing after it runs."""
    failed: list[tuple[str, str]] = []
    for name, check in CHECKS.items():
        if check.needs_device and failed and failed[0][0] == "devices":
            break
        try:
            line = check.run(machine)
            show(name, None, line)
        except CheckFailed as err:
            show(name, str(err), str(err))
            failed.append((name, str(err)))
    return failed


def one_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__


def hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


PACKAGES = ("triton", "spikingjelly", "cupy-cuda13x", "cupy-cuda12x", "cuda-bindings", "ray",
            "optuna", "numpy")


@register_check
class Versions(Check):
    name, needs_device = "versions", False

    def run(self, machine):
        found = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
        for package in PACKAGES:
            try:
                found.append(f"{package} {metadata.version(package)}")
            except metadata.PackageNotFoundError:
                if not package.startswith("cupy"):
                    found.append(f"{package} -")
        cuda = torch.version.cuda
        return ", ".join(found) + (f" (torch built for CUDA {cuda})" if cuda else " (torch without CUDA)")


@register_check
class Devices(Check):
    name, needs_device = "devices", False

    def run(self, machine):
        if not torch.cuda.is_available():
            if machine.device.type == "cuda":
                raise CheckFailed(f"{machine.device} asked for, but torch sees no CUDA device")
            return f"no GPU; CPU with {os.cpu_count()} cores, torch uses {torch.get_num_threads()} threads"
        count = torch.cuda.device_count()
        if machine.device.type == "cuda" and (machine.device.index or 0) >= count:
            raise CheckFailed(f"{machine.device} asked for, but torch sees {count} CUDA device(s)")
        gpus = []
        for i in range(count):
            p = torch.cuda.get_device_properties(i)
            gpus.append(f"cuda:{i} {p.name} (sm_{p.major}{p.minor}, {p.total_memory / 2**30:.1f} GiB)")
        return "; ".join(gpus)


def disagreement(backend: str, cls, dtype: torch.dtype, device: torch.device) -> str | None:
    """Why ``backend`` disagrees with the reference on a small random input, or None."""
    torch.manual_seed(0)
    x = (torch.randn(4, 3, 1000, device=device) * 1.5).to(dtype)
    ref, other = cls(backend="torch").to(device), cls(backend=backend).to(device)
    if cls is PLIF:
        other.load_state_dict(ref.state_dict())
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error", BackendFallbackWarning)
        sa, sb = ref(xa), other(xb)
        g = torch.randn_like(sa)
        sa.backward(g)
        sb.backward(g)
    where = f"{cls.__name__} {str(dtype).removeprefix('torch.')}"
    if sb.dtype != dtype:
        return f"{where}: spikes come back as {sb.dtype}"
    differ = int((sa != sb).sum())
    if differ:
        return f"{where}: {differ} of {sa.numel()} spikes differ"
    rtol = 1e-5 if dtype == torch.float32 else 8e-3
    grads = [(xb.grad.float(), xa.grad.float())]
    if cls is PLIF:
        grads.append((other.w.grad, ref.w.grad))
    for got, want in grads:
        if not torch.allclose(got, want, rtol=rtol, atol=1e-6):
            worst = float(((got - want).abs() / (want.abs() + 1e-6)).max())
            return f"{where}: gradients differ (worst relative {worst:.2g} > {rtol:g})"
    return None


@register_check
class Backends(Check):
    name = "backends"

    def run(self, machine):
        device = machine.device
        auto = {str(dt).removeprefix("torch."): resolve("auto", device, dt, LIF)[0]
                for dt in (torch.float32, torch.bfloat16)}
        parts = ["auto -> " + ", ".join(f"{b} ({dt})" for dt, b in auto.items())]
        failures = []
        for backend in BACKENDS:
            if backend in ("auto", "torch"):
                continue
            reason = why_not(backend, device, torch.float32, LIF)
            if reason is not None:
                parts.append(f"{backend} n/a ({reason.removeprefix('it ')})")
                continue
            try:
                bad = next((r for cls in (LIF, PLIF) for dt in (torch.float32, torch.bfloat16)
                            if (r := disagreement(backend, cls, dt, device))), None)
            except Exception as err:  # a crash on this device is what we are here to find
                bad = f"raised {one_line(err)}"
            parts.append(f"{backend} {'DISAGREES' if bad else 'agrees'}")
            if bad:
                failures.append(f"{backend} on {device}: {bad}")
        if device.type == "cuda" and "torch" in auto.values():
            failures.append(f"auto uses the slow torch path on {device}: "
                            f"{why_not('triton', device, torch.float32, LIF)}")
        if failures:
            raise CheckFailed("; ".join(failures))
        return f"on {device}: " + "; ".join(parts)


@register_check
class Compilers(Check):
    name = "compilers"

    def run(self, machine):
        device = machine.device
        if device.type == "cuda":
            major, minor = torch.cuda.get_device_capability(device)
            sm, note = major * 10 + minor, ""
        else:
            sm, note = 90, " (no GPU here)"
        parts, failures = [], []
        for name, compile_all in (
            ("triton", lambda: [aot.compile_triton(v, sm) for v in aot.REPRESENTATIVE]),
            ("nvrtc", lambda: aot.compile_cupy(sm)),
        ):
            start = time.perf_counter()
            try:
                compile_all()
                parts.append(f"{name} ok ({time.perf_counter() - start:.1f} s)")
            except aot.CompilerMissing as err:
                parts.append(f"{name} n/a ({err})")
                if name == "triton" and device.type == "cuda":
                    failures.append(str(err))
            except Exception as err:
                failures.append(f"{name} for sm_{sm}: {one_line(err)}")
        if failures:
            raise CheckFailed("; ".join(failures))
        return f"sm_{sm}{note}: " + ", ".join(parts)


@register_check
class Ray(Check):
    name = "ray"

    def run(self, machine):
        if not machine.ray:
            return "skipped (--no-ray)"
        import ray

        from .engine import start_local_ray, stop_local_ray

        address = machine.ray_address
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        started = not ray.is_initialized()
        try:
            if started:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:
                    start_local_ray()
            res = ray.cluster_resources()
        except Exception as err:
            raise CheckFailed(f"Ray at {address or 'local'}: {one_line(err)}") from None
        finally:
            if started and ray.is_initialized():
                stop_local_ray()  # removes the session folder only when it started it
        cpus, gpus = res.get("CPU", 0), res.get("GPU", 0)
        if machine.device.type == "cuda" and not gpus:
            raise CheckFailed(f"Ray at {address or 'local'} sees {cpus:g} CPUs and no GPU: "
                              "trials would not get one")
        return f"{address or 'local'}: {cpus:g} CPUs, {gpus:g} GPUs"


@register_check
class Storage(Check):
    name = "storage"

    def run(self, machine):
        url = machine.storage_url
        if url is None:
            return "no study or --storage given: skipped"
        from .storage import make_storage

        try:
            n = len(make_storage(url).get_all_studies())
        except Exception as err:
            raise CheckFailed(f"{hide_password(url)} unreachable: {one_line(err)}") from None
        return f"{hide_password(url)} reachable ({n} {'study' if n == 1 else 'studies'})"
