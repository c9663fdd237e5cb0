"""Training stage: data sources and loaders, checkpoints, fine-tuning from a parent, the Ray
Tune trainable that runs one trial and the lineage of promotion stages."""
