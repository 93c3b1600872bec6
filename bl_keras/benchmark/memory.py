"""Peak memory of one measurement: host resident set (Linux) and accelerator memory.

Linux lets a process reset its RSS high-water mark (`/proc/self/clear_refs`, value 5), so each
model gets its own peak although all run in one process. Freed host memory is handed back to the
system first (glibc `malloc_trim`), or the next model would run inside the previous one's heap
and look smaller than it is. Where the reset is unavailable, the process peak is reported.
"""

import ctypes
import gc
import resource

import tensorflow as tf


def _status_mb(field):
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def release_host_memory():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss():
    """Start a new high-water mark at the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb():
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def gpu_devices():
    return [device.name for device in tf.config.list_logical_devices("GPU")]


def reset_gpu_peak():
    for device in gpu_devices():
        tf.config.experimental.reset_memory_stats(device)


def gpu_peak_mb():
    """Largest peak allocation over the GPUs since the last reset, or None without a GPU."""
    peaks = [tf.config.experimental.get_memory_info(device)["peak"] for device in gpu_devices()]
    return max(peaks) / 2**20 if peaks else None
