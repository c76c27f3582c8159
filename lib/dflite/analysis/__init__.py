"""Analysis: the figures of the notebooks (later: Grad-CAM scored against masks, transfer)."""
