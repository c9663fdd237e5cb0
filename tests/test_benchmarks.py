"""The benchmark scripts run and print their tables (tiny sizes, CPU: not a timing test)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/studyruns.py
from studyruns import run_script  # noqa: E402

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script: str, *args: str) -> str:
    """The script run by this process (tests/studyruns.py: run_script), its output."""
    proc = run_script(BENCH / script, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _run_process(script: str, *args: str) -> str:
    """The script in a process of its own: for one that starts worker processes."""
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_lif_kernel_table(tmp_path):
    out = _run("lif_kernel.py", "--device", "cpu", "--neurons", "4096", "--T", "2",
               "--dtypes", "float32", "--backends", "torch,spikingjelly,triton", "--reps", "2",
               "--json", str(tmp_path / "lif.json"))
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert set(rows) == {"torch", "spikingjelly", "triton"}
    assert float(rows["torch"].split()[3]) > 0  # ms
    assert "n/a" in rows["triton"] and "CUDA" in rows["triton"]  # not timed as its fallback
    saved = json.loads((tmp_path / "lif.json").read_text())
    assert saved["benchmark"] == "lif_kernel" and [r["backend"] for r in saved["rows"]] == \
        ["torch", "spikingjelly", "triton"]
    assert saved["rows"][0]["ms"] > 0 and saved["rows"][2]["ms"] is None


@pytest.mark.parametrize("script,args", [
    ("train_step.py", ["--variants", "naive,data,triton", "--workers", "0", "--images", "64"]),
    ("throughput.py", ["--backends", "torch,spikingjelly"]),
])
def test_training_tables(script, args):
    out = _run(script, "--device", "cpu", "--arch", "tiny", "--T", "1", "--steps", "1",
               "--warmup", "1", "--batch-size" if script == "throughput.py" else "--batch-sizes",
               "16", *args)
    values = [float(line.split()[-2]) for line in out.splitlines()[2:]]  # the images/s column
    assert len(values) == (3 if script == "train_step.py" else 2) and all(v > 0 for v in values), out


def test_data_pipeline_table():
    out = _run_process("data_pipeline.py", "--images", "16", "--workers", "1", "--batch-size", "8")
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(rows) == {"cpu", "batched-cpu"} and all(float(r[3]) > 0 for r in rows.values()), out
