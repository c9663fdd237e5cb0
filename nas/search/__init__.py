"""Search stage: the Optuna searcher and its storage, Ray Tune schedulers (MO-ASHA, racing),
the zero-cost prefilter, Pareto ranking, cluster paths and the trial records they share."""
