"""Every registered sampler kind (nas/samplers.py) builds its Optuna sampler and searches:
a seeded search is reproducible, a multi-objective kind searches two objectives, and the
study config allows exactly the registered names."""
import warnings

import optuna
import pytest

from nas.samplers import SAMPLER_KINDS, SamplerKind, register_sampler
from nas.study import Sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _search(kind: SamplerKind, seed: int, n: int = 6, directions=("minimize",)) -> list[dict]:
    study = optuna.create_study(sampler=kind.build(seed, {}), directions=list(directions))

    def objective(trial):
        x, y = trial.suggest_float("x", -2.0, 2.0), trial.suggest_float("y", -2.0, 2.0)
        return (x - 1) ** 2 + y ** 2 if len(directions) == 1 else ((x - 1) ** 2, (y + 1) ** 2)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature notices of some samplers
        study.optimize(objective, n_trials=n)
    assert len(study.trials) == n and all(t.state.name == "COMPLETE" for t in study.trials)
    return [t.params for t in study.trials]


@pytest.mark.parametrize("name", list(SAMPLER_KINDS))
def test_every_sampler_builds_searches_and_repeats_itself_with_its_seed(name):
    kind = SAMPLER_KINDS[name]
    first = _search(kind, seed=3)
    assert all(-2.0 <= p["x"] <= 2.0 and -2.0 <= p["y"] <= 2.0 for p in first)
    assert _search(kind, seed=3) == first  # seeded: the same proposals
    assert _search(kind, seed=4) != first
    if kind.multi_objective:
        _search(kind, seed=3, n=4, directions=("minimize", "minimize"))


@pytest.mark.parametrize("name", list(SAMPLER_KINDS))
def test_the_study_config_takes_every_registered_sampler_and_its_rules(name):
    kind = SAMPLER_KINDS[name]
    assert Sampler(name=name).fixed == kind.fixed
    if not kind.takes_options:
        with pytest.raises(ValueError, match=f"options: the {name} sampler takes none"):
            Sampler(name=name, options={"n_startup_trials": 2})
    with pytest.raises(ValueError, match="sampler.name|Input should be"):
        Sampler(name="bayes")


def test_a_name_registers_once():
    class Twice(SamplerKind):
        name = "tpe"

        def build(self, seed, options):
            return optuna.samplers.RandomSampler(seed=seed)

    with pytest.raises(ValueError, match="registered twice"):
        register_sampler(Twice)
