"""HuggingFace datasets out of mining runs: the layouts, the id-keyed side dataset, the dataset card."""
