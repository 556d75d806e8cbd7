"""`patchloop devices`: the OpenCL platforms and devices, and which one Patchloop would use."""
import os

import pyopencl as cl

from patchloop_kernels.runtime import NO_OPENCL_HINT, Device, NoOpenCLError


def run(args) -> int:
    try:
        platforms = cl.get_platforms()
    except cl.Error:
        platforms = []
    if not platforms:
        raise NoOpenCLError(NO_OPENCL_HINT)
    for p_index, platform in enumerate(platforms):
        print(f"platform {p_index}: {platform.name.strip()} ({platform.version.strip()})")
        for d_index, dev in enumerate(platform.get_devices()):
            kind = "GPU" if dev.type & cl.device_type.GPU else \
                "CPU" if dev.type & cl.device_type.CPU else "other"
            print(f"  device {p_index}:{d_index}: {dev.name.strip()} [{kind}], "
                  f"{dev.max_compute_units} compute units, {dev.global_mem_size >> 20} MiB")
    chosen = Device.default()
    how = f"PYOPENCL_CTX={os.environ['PYOPENCL_CTX']}" if os.environ.get("PYOPENCL_CTX") else \
        "first GPU, else first device; set PYOPENCL_CTX=platform:device to choose"
    print(f"using: {chosen.describe()} ({how})")
    return 0
