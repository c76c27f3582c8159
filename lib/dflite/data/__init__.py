"""Data: the synthetic set, dataset adapters, sampled video decoding, Haar faces, the crop store, loaders.

Nothing here imports the model, engine or study groups.
"""
