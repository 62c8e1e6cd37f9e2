"""Run untrusted, model-generated Python in warm, isolated, resource-limited processes.

Self-contained: stdlib only (plus ctypes for libseccomp, Landlock and prctl).
"""

from .models import OutputFile, SandboxLimits, SandboxResult, SandboxUnavailable
from .probe import HostIsolation, probe_host
from .sandbox import Sandbox
from .switch import StopSwitch

__all__ = [
    "HostIsolation",
    "OutputFile",
    "Sandbox",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "StopSwitch",
    "probe_host",
]
