"""Networks: the model registry and checkpoints (safetensors weights + a JSON spec) of any architecture."""
