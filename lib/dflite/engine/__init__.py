"""Training engine: run folders, `fit` with hooks, and the metrics it reports."""
