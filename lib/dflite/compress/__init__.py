"""Compression and deployment: cost of a model (later: lottery tickets, structured pruning, distillation)."""
