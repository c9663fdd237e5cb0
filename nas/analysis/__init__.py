"""Analysis stage: reading finished studies back: a study's report and its figures
(nas.report), component effects, calibration, and how training-free scores agree with
trained accuracy (tables and figures for nas.report and nas.zero_cost)."""
