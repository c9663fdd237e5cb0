"""Stage 6 (docs/architecture.md): promotion of a search's winners to longer training and
other data, in chains of stages, and the lineage of every network trained along one."""
