"""Compression algorithms: unstructured masks and magnitude pruning, Taylor structured pruning, the distillation
loss, ONNX export and int8 deployment with their cost (parameters, MACs, size, latency)."""
