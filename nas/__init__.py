"""Architecture search, training and data for spiking MLP networks."""
