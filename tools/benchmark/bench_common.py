"""Helpers shared by the PyTorch sides of the step benchmarks (official_step.py,
pytorch_preset_step.py): threads, precision, the measurement protocol of `ssl-bench step` and
the machine-readable RESULT line that tools/benchmark/summarise.py reads.

Protocol (the same as `ssl-bench step`): one warm-up step, then the peak resident set size is
restarted (VmHWM, via /proc/self/clear_refs) and `steps` steps are timed; images/s is the batch
divided by the mean wall time of a timed step, peak_mb the VmHWM over the timed steps (falling
back to the process's ru_maxrss where /proc cannot restart it).
"""
import contextlib
import resource
import time

import torch


def add_common_arguments(parser, workload: str) -> None:
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: torch.autocast('cpu', dtype=torch.bfloat16) around forward and loss")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--workload", default=workload, help="the workload's name in the RESULT line")


def set_threads(threads: int) -> None:
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # only settable before any inter-op work started
        torch.set_num_interop_threads(threads)


def autocast(precision: str):
    """Mixed precision as DINO's `torch.cuda.amp.autocast(fp16_scaler is not None)`, on the CPU in bfloat16."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def _status_kb(field: str):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_memory() -> bool:
    """Restarts VmHWM at the current resident size (as MemoryUsage.resetPeak in Swift)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def peak_memory_mb(reset_worked: bool) -> float:
    peak_kb = _status_kb("VmHWM:") if reset_worked else None
    if peak_kb is None:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak_kb * 1024 / 1e6


def measure(step, steps: int):
    """Runs `step()` once to warm up, then `steps` times; `step` returns its phase times (a list
    of seconds). Returns (mean seconds per step, mean phase times, peak MB over the timed steps)."""
    step()
    reset_worked = reset_peak_memory()
    phases = None
    start = time.perf_counter()
    for _ in range(steps):
        split = step()
        phases = split if phases is None else [a + b for a, b in zip(phases, split)]
    seconds = (time.perf_counter() - start) / steps
    return seconds, [p / steps for p in phases], peak_memory_mb(reset_worked)


def result_line(workload: str, side: str, batch: int, seconds: float, peak_mb: float, **extra) -> str:
    """`RESULT key=value ...`: no spaces inside values; summarise.py ignores keys it does not use."""
    fields = {"workload": workload, "side": side, "batch": batch,
              "images_per_second": f"{batch / seconds:.3f}", "ms_per_step": f"{seconds * 1000:.1f}",
              "peak_mb": f"{peak_mb:.1f}", "threads": torch.get_num_threads(), "torch": torch.__version__}
    fields.update(extra)
    return "RESULT " + " ".join(f"{k}={str(v).replace(' ', '_')}" for k, v in fields.items())
