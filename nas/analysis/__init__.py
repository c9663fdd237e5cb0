"""Analysis stage: reading finished studies back, e.g. how training-free scores agree with
trained accuracy (tables and figures for nas.report and nas.zero_cost)."""
