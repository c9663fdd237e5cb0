"""``python -m nas.doctor``: every check on this machine, and one-line failures."""
import pytest
import torch

from nas import doctor


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
    assert doctor._hide_password("postgresql+psycopg2://me:s3cret@db:5432/x") == \
        "postgresql+psycopg2://me:***@db:5432/x"


def test_ray_reports_what_it_sees(monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_TMPDIR", "/tmp/ray")
    line = doctor.check_ray(None, torch.device("cpu"))
    assert line.startswith("local: ") and "CPUs" in line and "GPUs" in line
