"""What machine Torch Lab runs on: CPU, memory, CUDA devices and library versions."""
from __future__ import annotations

import platform
from dataclasses import dataclass, field
from importlib import metadata

LIBRARIES = ("torch", "transformers", "datasets", "tokenizers", "accelerate", "streamlit")


@dataclass
class GpuInfo:
    """One CUDA device."""

    index: int
    name: str
    total_bytes: int
    capability: str
    bf16: bool


@dataclass
class DeviceReport:
    """The device panel's data: plain values, no torch objects."""

    cpu_model: str
    cpu_cores: int
    ram_total_bytes: int
    ram_available_bytes: int
    cuda_available: bool
    device_in_use: str
    gpus: list[GpuInfo] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    python: str = platform.python_version()


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else platform's guess."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed versions by distribution name; 'not installed' where missing."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_report(device_setting: str = "auto") -> DeviceReport:
    """Probe the machine once; imports torch."""
    import os

    import psutil
    import torch

    from core.settings import resolve_device

    vm = psutil.virtual_memory()
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(GpuInfo(i, p.name, p.total_memory, f"{p.major}.{p.minor}", torch.cuda.is_bf16_supported()))
    try:
        in_use = resolve_device(device_setting)
    except ValueError as e:
        in_use = f"cpu ({e})"
    return DeviceReport(
        cpu_model=cpu_model(),
        cpu_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
        ram_total_bytes=vm.total,
        ram_available_bytes=vm.available,
        cuda_available=torch.cuda.is_available(),
        device_in_use=in_use,
        gpus=gpus,
        versions=library_versions(),
    )


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
