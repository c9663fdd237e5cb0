"""``python -m nas.doctor``: every check on this machine, and one-line failures."""
import pytest
import torch

from nas import doctor
from nas.search.preflight import CHECKS, Check, CheckFailed, Machine, hide_password, register_check, run_checks


def _run(capsys, *argv):
    rc = doctor.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out.splitlines(), err.strip().splitlines()


def test_doctor_passes_here_and_names_every_check(tmp_path, capsys):
    rc, out, err = _run(capsys, "--no-ray", "--storage", f"sqlite:///{tmp_path}/optuna.db")
    assert rc == 0 and err == [], (out, err)
    checks = ("versions", "devices", "backends", "compilers", "ray", "storage")
    assert [line.split()[:2] for line in out] == [["ok", name] for name in checks]
    text = "\n".join(out)
    assert f"torch {torch.__version__}" in text and "reachable (0 studies)" in text
    if not torch.cuda.is_available():
        assert "auto -> torch (float32), torch (bfloat16)" in text and "spikingjelly agrees" in text


def test_an_unreachable_storage_fails_with_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    rc, out, err = _run(capsys, "--no-ray", "--storage", f"sqlite:///{blocker}/sub/optuna.db")
    assert rc == 1 and len(err) == 1
    assert err[0].startswith("nas.doctor: storage: sqlite:///") and "unreachable" in err[0]
    assert out[-1].startswith("FAIL  storage")


def test_a_backend_that_disagrees_fails_the_doctor(monkeypatch, capsys):
    from blocks.neurons import backends

    real = backends._spikingjelly
    monkeypatch.setattr(backends, "_spikingjelly", lambda n, x: 1 - real(n, x))  # every spike flipped
    rc, out, err = _run(capsys, "--no-ray", "--device", "cpu")
    assert rc == 1 and len(err) == 1
    assert "nas.doctor: backends: spikingjelly on cpu: LIF float32:" in err[0] and "spikes differ" in err[0]
    assert any(line.startswith("FAIL  backends  spikingjelly on cpu") for line in out)


def test_passwords_stay_hidden():
    assert hide_password("postgresql+psycopg2://me:s3cret@db:5432/x") == \
        "postgresql+psycopg2://me:***@db:5432/x"


def test_ray_reports_what_it_sees(monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_TMPDIR", "/tmp/ray")
    line = CHECKS["ray"].run(Machine(torch.device("cpu")))
    assert line.startswith("local: ") and "CPUs" in line and "GPUs" in line


@pytest.mark.parametrize("name", [n for n in CHECKS if n != "ray"])  # ray: the test above
def test_every_check_gives_one_line_or_fails_with_one(name, tmp_path):
    """Each registered check (nas/search/preflight.py) on this machine's CPU: one line
    naming what it found, or a CheckFailed of one line; none raises anything else."""
    machine = Machine(torch.device("cpu"), storage_url=f"sqlite:///{tmp_path}/optuna.db", ray=False)
    try:
        line = CHECKS[name].run(machine)
    except CheckFailed as err:
        line = str(err)
    assert line and "\n" not in line and len(line) < 1000, line
    assert CHECKS[name].name == name


def test_a_check_is_registered_once_and_a_missing_device_stops_the_rest():
    with pytest.raises(ValueError, match="registered twice"):
        register_check(type("Again", (Check,), {"name": "versions", "run": lambda self, m: ""}))
    shown = []
    failed = run_checks(Machine(torch.device("cuda", 99)), lambda *a: shown.append(a[:2]))
    assert [n for n, _ in shown] == ["versions", "devices"] and failed[0][0] == "devices"
