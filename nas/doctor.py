"""Check this machine before a search, in seconds: ``python -m nas.doctor [STUDY] [--storage URL]``.

One line per check, ``ok`` or ``FAIL``:

* versions: Python and the packages the project runs on;
* devices: the GPUs torch sees (name, compute capability, memory), or the CPU;
* backends: which neuron backends can run on the device, what ``auto`` picks there, and
  whether each one agrees with the ``torch`` reference on a small random input (LIF and
  PLIF, fp32 and bf16: identical spikes, close gradients). On a GPU, ``auto`` falling
  back to ``torch`` (no fused kernel usable) is a failure: the run would be slow;
* compilers: Triton (ahead of time, a representative set of kernel variants) and NVRTC
  (the CuPy source) for this GPU's architecture; with no GPU, for sm_90;
* ray: the CPUs and GPUs a local Ray (or ``--ray-address``, or the study's) sees; on a GPU
  machine a Ray that sees no GPU is a failure;
* storage: whether the study's storage URL (or ``--storage``) opens.

Exit status 0 when every check passes, else 1 with one ``nas.doctor: ...`` line on stderr.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
import warnings
from importlib import metadata

import torch


class Failure(Exception):
    """A check failed; the message is one line."""


def _one_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__


PACKAGES = ("torch", "triton", "spikingjelly", "cupy-cuda13x", "cupy-cuda12x", "cuda-bindings",
            "ray", "optuna", "numpy")


def check_versions() -> str:
    found = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
    for name in PACKAGES[1:]:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            if not name.startswith("cupy"):
                found.append(f"{name} -")
    cuda = torch.version.cuda
    return ", ".join(found) + (f" (torch built for CUDA {cuda})" if cuda else " (torch without CUDA)")


def check_devices(device: torch.device) -> str:
    if not torch.cuda.is_available():
        if device.type == "cuda":
            raise Failure(f"{device} asked for, but torch sees no CUDA device")
        return f"no GPU; CPU with {os.cpu_count()} cores, torch uses {torch.get_num_threads()} threads"
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        gpus.append(f"cuda:{i} {p.name} (sm_{p.major}{p.minor}, {p.total_memory / 2**30:.1f} GiB)")
    return "; ".join(gpus)


def _disagreement(backend: str, cls, dtype: torch.dtype, device: torch.device) -> str | None:
    """Why ``backend`` disagrees with the reference on a small random input, or None."""
    from blocks.neurons import PLIF
    from blocks.neurons.backends import BackendFallbackWarning

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


def check_backends(device: torch.device) -> str:
    from blocks.neurons import BACKENDS, LIF, PLIF
    from blocks.neurons.backends import resolve, why_not

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
                        if (r := _disagreement(backend, cls, dt, device))), None)
        except Exception as err:  # a crash on this device is what we are here to find
            bad = f"raised {_one_line(err)}"
        parts.append(f"{backend} {'DISAGREES' if bad else 'agrees'}")
        if bad:
            failures.append(f"{backend} on {device}: {bad}")
    if device.type == "cuda" and "torch" in auto.values():
        failures.append(f"auto uses the slow torch path on {device}: "
                        f"{why_not('triton', device, torch.float32, LIF)}")
    if failures:
        raise Failure("; ".join(failures))
    return f"on {device}: " + "; ".join(parts)


def check_compilers(device: torch.device) -> str:
    from blocks.neurons import aot

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
            failures.append(f"{name} for sm_{sm}: {_one_line(err)}")
    if failures:
        raise Failure("; ".join(failures))
    return f"sm_{sm}{note}: " + ", ".join(parts)


def check_ray(address: str | None, device: torch.device) -> str:
    import ray

    from .search.engine import start_local_ray, stop_local_ray

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
        raise Failure(f"Ray at {address or 'local'}: {_one_line(err)}") from None
    finally:
        if started and ray.is_initialized():
            stop_local_ray()  # removes the session folder only when it started it
    cpus, gpus = res.get("CPU", 0), res.get("GPU", 0)
    if device.type == "cuda" and not gpus:
        raise Failure(f"Ray at {address or 'local'} sees {cpus:g} CPUs and no GPU: trials would not get one")
    return f"{address or 'local'}: {cpus:g} CPUs, {gpus:g} GPUs"


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def check_storage(url: str | None) -> str:
    if url is None:
        return "no study or --storage given: skipped"
    from .search.storage import make_storage

    try:
        storage = make_storage(url)
        n = len(storage.get_all_studies())
    except Exception as err:
        raise Failure(f"{_hide_password(url)} unreachable: {_one_line(err)}") from None
    return f"{_hide_password(url)} reachable ({n} {'study' if n == 1 else 'studies'})"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nas.doctor", description=__doc__.split("\n")[0])
    p.add_argument("study", nargs="?", help="a study file: its storage (and Ray address) are checked")
    p.add_argument("--storage", help="a storage URL to check (default: the study's)")
    p.add_argument("--device", help="the device to check (default: cuda if available, else cpu)")
    p.add_argument("--ray-address", help="a Ray cluster to ask (default: the study's, else a local Ray)")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray check (it starts Ray: ~5 s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    url, address = args.storage, args.ray_address
    if args.study is not None:
        from .study import StudyError, load_study

        try:
            cfg = load_study(args.study)
        except StudyError as err:
            print(f"nas.doctor: {err}", file=sys.stderr)
            return 2
        url, address = url or cfg.storage_url, address or cfg.ray_address
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)
    checks = [("versions", check_versions), ("devices", lambda: check_devices(device)),
              ("backends", lambda: check_backends(device)),
              ("compilers", lambda: check_compilers(device)),
              ("ray", lambda: "skipped (--no-ray)" if args.no_ray else check_ray(address, device)),
              ("storage", lambda: check_storage(url))]
    failed = []
    for name, check in checks:
        if name != "devices" and failed and failed[0][0] == "devices":
            break  # nothing else is meaningful without the device asked for
        try:
            print(f"ok    {name:<10}{check()}", flush=True)
        except Failure as err:
            print(f"FAIL  {name:<10}{err}", flush=True)
            failed.append((name, str(err)))
    if failed:
        name, reason = failed[0]
        more = f" (and {len(failed) - 1} more failed checks)" if len(failed) > 1 else ""
        print(f"nas.doctor: {name}: {reason}{more}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
