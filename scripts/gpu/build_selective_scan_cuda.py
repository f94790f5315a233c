"""Build mamba-ssm's selective-scan CUDA extension for this machine's GPU only.

``pip install mamba-ssm`` compiles the kernel for nine GPU architectures (tens of minutes);
this compiles the same sources (from an unpacked mamba-ssm sdist) for the architecture of
the GPU in this machine, with the same nvcc flags as mamba-ssm's ``setup.py``, through
``torch.utils.cpp_extension.load``. The result, ``<build>/selective_scan_cuda*.so``, is what
``mamba_ssm.ops.selective_scan_interface`` imports: put ``<build>`` and the sdist folder on
``PYTHONPATH`` and the ``mamba_ssm`` backend of :mod:`compendium.vision_mamba.selective_scan`
becomes available.

    python scripts/gpu/build_selective_scan_cuda.py --src mamba_ssm-2.3.2.post1 --build /tmp/ss_build

Used by ``scripts/gpu/device_check.sh`` (the GPU numbers in the book).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", required=True, type=Path, help="unpacked mamba-ssm sdist (holds csrc/)")
    ap.add_argument("--build", required=True, type=Path, help="build folder (the .so lands here)")
    args = ap.parse_args(argv)

    import torch
    from torch.utils.cpp_extension import load

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: the kernel is built for the GPU of this machine")
    csrc = args.src / "csrc" / "selective_scan"
    if not csrc.is_dir():
        raise SystemExit(f"{csrc} not found: --src must be an unpacked mamba-ssm sdist "
                         "(https://pypi.org/project/mamba-ssm/#files)")
    major, minor = torch.cuda.get_device_capability()
    os.environ["TORCH_CUDA_ARCH_LIST"] = f"{major}.{minor}"
    sources = [csrc / "selective_scan.cpp"] + sorted(csrc.glob("selective_scan_*.cu"))
    nvcc = ["-O3", "-std=c++17", "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
            "-U__CUDA_NO_BFLOAT16_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
            "-U__CUDA_NO_BFLOAT162_OPERATORS__", "-U__CUDA_NO_BFLOAT162_CONVERSIONS__",
            "--expt-relaxed-constexpr", "--expt-extended-lambda", "--use_fast_math", "--threads", "4"]
    args.build.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    print(f"building {len(sources)} sources for sm_{major}{minor} with torch {torch.__version__} "
          f"(CUDA {torch.version.cuda}), MAX_JOBS={os.environ.get('MAX_JOBS', 'default')}", flush=True)
    load(name="selective_scan_cuda", sources=[str(s) for s in sources], extra_cflags=["-O3", "-std=c++17"],
         extra_cuda_cflags=nvcc, extra_include_paths=[str(csrc)], build_directory=str(args.build),
         verbose=True)
    print(f"built in {time.time() - t0:.0f} s -> {args.build}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
