"""What one model costs, per stage: parameters, firing rates, SOPs, MACs, energy, MFI.

    python -m nas.inspect --arch-config runs/train/x/arch.yaml --checkpoint runs/train/x/best.pt
    python -m nas.inspect --arch mlp_spe_t --T 4          # untrained: structure only

Images: the first ``--images`` validation images of ``--data``, else of the data the
checkpoint was trained on, else of the ``--arch-config`` file's recipe (an export's: the
study's data, at the network's image size); without any, Gaussian noise, and the output
says so (nas/analysis/inspection.py). Counts are per image; see :mod:`nas.metrics`.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .analysis.inspection import inspect_network
from .metrics import E_AC, E_MAC, ModelMetrics
from .recipe import SOURCES


def _si(x: float, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3f} {prefix}{unit}".rstrip()
    return f"{x:.4g} {unit}".rstrip()


def render(m: ModelMetrics, title: str, layers: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    t = Table(title=title)
    for col, just in (("stage", "left"), ("params", "right"), ("spiking layers", "right"),
                      ("neurons", "right"), ("firing rate", "right"), ("SOPs", "right"),
                      ("MACs", "right"), ("energy (µJ)", "right"), ("MFI", "left")):
        t.add_column(col, justify=just)
    for r in m.per_stage():
        mfi = "yes" if r["mfi"] else f"no ({len(r['real_input_layers'])} real-input layers)"
        if r["mfi"] and r["exempt"]:
            mfi += " (" + ", ".join(r["exempt"]) + " exempt)"
        t.add_row(str(r["stage"]), _si(r["params"]), str(r["spiking_layers"]), _si(r["neurons"]),
                  "–" if math.isnan(r["firing_rate"]) else f"{r['firing_rate']:.4f}",
                  _si(r["sops"]), _si(r["macs"]), f"{r['energy_uj']:.4g}", mfi)
    all_mfi = all(r["mfi"] for r in m.per_stage())
    t.add_row("total", _si(m.params), str(len(m.layers)), _si(sum(r.neurons for r in m.layers)),
              "–" if math.isnan(m.sparsity) else f"{m.sparsity:.4f}", _si(m.sops), _si(m.macs),
              f"{m.energy_uj:.4g}", "yes" if all_mfi else "no", style="bold")
    console.print(t)
    console.print(
        f"per image, T = {m.T}, {m.batch} images: sparsity (spikes / neurons / step) "
        f"{m.sparsity:.4f}, mean layer firing rate {m.firing_rate:.4f}, spikes {_si(m.spikes)}; "
        f"SOPs {_si(m.sops)} x {m.e_ac * 1e12:g} pJ + MACs {_si(m.macs)} x {m.e_mac * 1e12:g} pJ "
        f"= {m.energy_uj:.4g} µJ; the same network as an ANN (T = 1): {_si(m.ann_flops, 'FLOPs')}, "
        f"{m.ann_energy_uj:.4g} µJ ({m.ann_energy_uj / m.energy_uj:.1f}x)" if m.energy_uj else "")
    if layers:
        lt = Table(title="spiking layers")
        for col in ("layer", "stage", "neurons", "firing rate"):
            lt.add_column(col, justify="left" if col == "layer" else "right")
        for r in m.layers:
            lt.add_row(r.name, str(r.stage), str(r.neurons), f"{r.firing_rate:.4f}")
        console.print(lt)
        ot = Table(title="FC / conv layers")
        for col in ("layer", "stage", "input", "SOPs", "MACs", "ANN MACs (T=1)"):
            ot.add_column(col, justify="left" if col in ("layer", "input") else "right")
        for o in m.ops:
            ot.add_row(o.name, str(o.stage), o.input + (" (exempt)" if o.exempt else ""),
                       _si(o.additions), _si(o.macs), _si(o.dense_macs))
        console.print(ot)


def main(argv: list[str] | None = None) -> int:
    import blocks

    ap = argparse.ArgumentParser(prog="python -m nas.inspect", description=__doc__.split("\n")[0])
    arch = ap.add_mutually_exclusive_group()
    arch.add_argument("--arch-config", help="an architecture YAML file")
    arch.add_argument("--arch", help="a preset name")
    ap.add_argument("--checkpoint", help="trained weights (nas.train --out DIR: best.pt / last.pt)")
    ap.add_argument("--data", choices=SOURCES, help="measure on this data's validation images")
    ap.add_argument("--data-root", help="data directory or .npz file")
    ap.add_argument("--images", type=int, default=64, help="images to measure on (64)")
    ap.add_argument("--T", type=int, help="time steps (overrides the architecture's)")
    ap.add_argument("--image-size", type=int, help="build the network for this image size (overrides the "
                                                   "architecture's; the data is resized to it)")
    ap.add_argument("--e-ac", type=float, default=E_AC * 1e12, help="pJ per addition (0.9)")
    ap.add_argument("--e-mac", type=float, default=E_MAC * 1e12, help="pJ per MAC (4.6)")
    ap.add_argument("--layers", action="store_true", help="also list every layer")
    ap.add_argument("--json", help="write every metric to this JSON file")
    args = ap.parse_args(argv)
    prog = "nas.inspect: error"
    if not (args.arch_config or args.arch or args.checkpoint):
        print(f"{prog}: give --arch-config, --arch or --checkpoint", file=sys.stderr)
        return 2
    try:
        result = inspect_network(arch_config=args.arch_config, arch=args.arch, checkpoint=args.checkpoint,
                                 data=args.data, data_root=args.data_root, images=args.images, T=args.T,
                                 image_size=args.image_size, e_ac=args.e_ac * 1e-12, e_mac=args.e_mac * 1e-12)
    except (ValueError, KeyError, FileNotFoundError, blocks.ConfigError) as err:
        print(f"{prog}: {str(err).strip(chr(34) + chr(39))}", file=sys.stderr)
        return 2
    render(result.metrics, result.title, layers=args.layers)
    if args.json:
        Path(args.json).write_text(json.dumps(result.metrics.to_json(), indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
