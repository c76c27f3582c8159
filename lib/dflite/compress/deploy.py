"""Deployment: parameters, size, MACs (Torch-Pruning's counter), CPU latency at batch 1 in torch and in
ONNX Runtime (fp32 and int8), ONNX export checked against torch, static int8 quantisation."""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..folders import atomic
from ..nets.models import count_parameters


def count_macs(model: nn.Module, input_size: int) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (torch_pruning.utils.count_ops_and_params)."""
    import torch_pruning as tp

    was_training = model.training
    model.eval()
    macs, _ = tp.utils.count_ops_and_params(model, torch.zeros(1, 3, input_size, input_size))
    model.train(was_training)
    return int(macs)


def size_mb(model: nn.Module) -> float:
    """Size of the model's weights as a safetensors file in MB (10^6 bytes): tensors and header, without
    the metadata a dflite checkpoint adds (the spec of a pruned net would count its layer list)."""
    from safetensors.torch import save

    return len(save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})) / 1e6


def cpu_latency_ms(model: nn.Module, input_size: int, repeats: int = 30, warmup: int = 5, threads: int = 1) -> float:
    """Median wall time of one batch-1 forward pass on the CPU with a fixed number of threads."""
    return timed_together({0: torch_call(model, input_size)}, threads, repeats, rounds=1, warmup=warmup)[0]


def torch_call(model: nn.Module, input_size: int):
    """A batch-1 forward pass of `model` on the CPU, as a call for `timed_together`."""
    model = model.to("cpu").eval()
    x = torch.randn(1, 3, input_size, input_size)
    return lambda: model(x)


def timed_together(calls: dict, threads: int = 1, repeats: int = 30, rounds: int = 5, warmup: int = 5,
                   clock=time.perf_counter) -> dict:
    """{key: ms} of each call (torch's with `threads` threads, ONNX Runtime's with their session's), timed in
    `rounds` interleaved rounds: each round times every call ceil(repeats / rounds) times in a row and keeps that
    median; a call's latency is its level in a typical round (median polish of the log round medians: call +
    round). Candidates and their reference are then timed within one round of each other (seconds to a minute),
    so a load that drifts hits them alike and their ratio survives it; timed one after another, minutes apart, a
    loaded run once read 2344 ms for a 44 ms net and turned a speed goal from "no" to "yes". A load that is there
    all along still slows two threads more than one: see `others_share`. Rounds alternate their order so that
    none always goes first."""
    if not calls:
        return {}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    per = max(1, -(-repeats // rounds))
    medians: dict = {key: [] for key in calls}
    try:
        with torch.inference_mode():
            for call in calls.values():
                for _ in range(warmup):
                    call()
            keys = list(calls)
            for r in range(rounds):
                for key in keys if r % 2 == 0 else keys[::-1]:
                    times = []
                    for _ in range(per):
                        t = clock()
                        calls[key]()
                        times.append(clock() - t)
                    medians[key].append(float(np.median(times)))
    finally:
        torch.set_num_threads(previous)
    ms = np.exp(_median_polish(np.log([medians[key] for key in calls]))) * 1000
    return {key: float(v) for key, v in zip(calls, ms)}


def cpu_reading():
    """(CPU seconds the whole machine was busy, this process's CPU seconds, wall seconds) now, for `others_share`;
    None where /proc/stat is missing (not Linux)."""
    import os

    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    ticks = ticks[:8]  # user nice system idle iowait irq softirq steal (guest time is within user and nice)
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK"), time.process_time(), time.perf_counter()


def others_share(start, end) -> float | None:
    """The share of the machine's CPUs that other processes kept busy between two `cpu_reading`s (0: a quiet
    machine; None: unknown). Interleaving makes latencies robust to load that drifts, not to load that is there
    all along: two threads of ours that share two cores with a third process read 256 ms for a 37 ms net."""
    import os

    if start is None or end is None or end[2] <= start[2]:
        return None
    others = (end[0] - start[0]) - (end[1] - start[1])
    return round(max(0.0, others / ((end[2] - start[2]) * (os.cpu_count() or 1))), 3)


def _median_polish(logs: np.ndarray, sweeps: int = 10) -> np.ndarray:
    """Per row (call) of a calls x rounds table of log times, its level in a typical round: Tukey's median polish
    fits log time = call + round, so a round where the CPU was busy moves every call alike and a round where it
    turned busy half-way (one call slow, the next not) is an outlier, not a shift of one call's median."""
    resid = np.array(logs, dtype=float)
    row, col = np.zeros(resid.shape[0]), np.zeros(resid.shape[1])
    for _ in range(sweeps):
        r = np.median(resid, axis=1)
        row += r
        resid -= r[:, None]
        c = np.median(resid, axis=0)
        col += c
        resid -= c[None, :]
    return row + np.median(col)


def cost(model: nn.Module, input_size: int, repeats: int = 30) -> dict:
    """One row of the cost table."""
    return {"params": count_parameters(model), "size_mb": round(size_mb(model), 3),
            "mmacs": round(count_macs(model, input_size) / 1e6, 2),
            "cpu_ms": round(cpu_latency_ms(model, input_size, repeats), 2)}


# ---- ONNX Runtime: export, fp32 and int8 sessions, accuracy and latency ---------------------------------

ONNX_INPUT, ONNX_OUTPUT = "input", "logit"


def export_onnx(model: nn.Module, path, input_size: int, rtol: float = 1e-3, atol: float = 1e-4) -> Path:
    """The model as ONNX (opset 17, dynamic batch; TorchScript exporter, dynamo=False), checked
    against torch's outputs on random inputs: |onnx - torch| beyond atol + rtol * |torch| is an error
    (ONNX Runtime fuses and reorders float operations, so large logits differ in the last digits)."""
    path = Path(path)
    model = model.to("cpu").eval()
    x = torch.randn(2, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
    with atomic(path, keep_suffix=True) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python ints in timm's padding code
            torch.onnx.export(model, (x[:1],), str(tmp), input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT],
                              dynamic_axes={ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}}, opset_version=17,
                              dynamo=False)
        with torch.inference_mode():
            want = model(x).numpy()
        got = session(tmp, threads=1).run(None, {ONNX_INPUT: x.numpy()})[0]
        if not np.allclose(got, want, rtol=rtol, atol=atol):
            diff, scale = float(np.abs(got - want).max()), float(np.abs(want).max())
            name = getattr(model, "dflite_spec", {}).get("name", "the model")
            raise RuntimeError(f"ONNX export of {name} differs from torch by up to {diff:.2e} on outputs up to "
                               f"{scale:.2e} (rtol {rtol:g}, atol {atol:g})")
    return path


def session(path, threads: int = 1, optimise: bool = True, spin: bool = True):
    """An ONNX Runtime CPU session with a fixed thread count and full graph optimisation. `spin=False` stops its
    idle pool threads from spinning after a run, as they do by default for the next one: with many sessions timed
    in turn, one session's spinning threads slowed the next (int8 at 2 threads read twice its time alone)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimise else \
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3  # warnings about unused initialisers after quantisation are noise here
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class _Batches:
    """onnxruntime's CalibrationDataReader over a list of input arrays."""

    def __init__(self, arrays: list):
        self.arrays = iter(arrays)

    def get_next(self):
        x = next(self.arrays, None)
        return None if x is None else {ONNX_INPUT: x}


def quantize_int8(fp32_path, out_path, calibration: list, per_channel: bool = True) -> Path:
    """Static int8 quantisation in QDQ form: uint8 activations, int8 (per-channel) weights, calibrated
    by min-max on `calibration` (normalised face-crop batches as float32 arrays), after onnxruntime's
    pre-processing (shape inference and graph optimisation)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    out_path = Path(out_path)
    pre = out_path.with_name(out_path.stem + ".pre.onnx")
    quant_pre_process(str(fp32_path), str(pre))
    quantize_static(str(pre), str(out_path), _Batches(calibration), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=per_channel,
                    calibrate_method=CalibrationMethod.MinMax)
    pre.unlink()
    return out_path


def quantize_dynamic_int8(fp32_path, out_path) -> Path:
    """Dynamic int8 quantisation (weights only, activations quantised on the fly): measured against
    static QDQ, used only where it wins."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    out_path = Path(out_path)
    pre = out_path.with_name(out_path.stem + ".pre.onnx")
    quant_pre_process(str(fp32_path), str(pre))
    quantize_dynamic(str(pre), str(out_path), weight_type=QuantType.QUInt8)
    pre.unlink()
    return out_path


def ort_probabilities(sess, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Fake-probability per uint8 (N, 3, S, S) crop from an ONNX Runtime session of a one-output detector."""
    from ..data.loader import normalise

    out = [sess.run(None, {ONNX_INPUT: normalise(x[i:i + batch_size]).numpy()})[0].reshape(-1)
           for i in range(0, len(x), batch_size)]
    return 1 / (1 + np.exp(-np.concatenate(out).astype(np.float64))) if out else np.zeros(0)


def ort_scores(sess, dataset, batch_size: int = 64) -> np.ndarray:
    """Fake-probability per crop of a CropDataset from an ONNX Runtime session, in dataset order."""
    return np.concatenate([ort_probabilities(sess, x, batch_size) for x, _, _ in dataset.batches(batch_size)])


def ort_call(path, input_size: int, threads: int = 1):
    """A batch-1 pass of an ONNX model in ONNX Runtime with `threads` intra-op threads, as a call for
    `timed_together`."""
    sess = session(path, threads, spin=False)  # timed among other sessions (see session)
    x = {ONNX_INPUT: np.random.default_rng(0).standard_normal((1, 3, input_size, input_size), dtype=np.float32)}
    return lambda: sess.run(None, x)


def ort_latency_ms(path, input_size: int, threads: int = 1, repeats: int = 30, warmup: int = 5) -> float:
    """Median batch-1 latency of an ONNX model in ONNX Runtime with `threads` intra-op threads."""
    return timed_together({0: ort_call(path, input_size, threads)}, threads, repeats, rounds=1, warmup=warmup)[0]
