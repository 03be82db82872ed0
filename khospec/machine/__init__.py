"""Real machines: import a boot log's memory layout, answer the layout questions, draw it.

``importer`` reads a dmesg log or a /proc/zoneinfo dump into a ``MachineLayout`` (and from
there a spec ``layout`` block), ``questions`` answers the four questions of the command
line contract by exact computation, ``svg`` draws memory maps, ``cli`` holds the
``khospec import`` and ``khospec machine`` commands.
"""

from __future__ import annotations

from khospec.machine.importer import (
    ImportError_,
    MachineLayout,
    MemRange,
    parse_layout,
    read_layout_file,
)

__all__ = ["ImportError_", "MachineLayout", "MemRange", "parse_layout", "read_layout_file"]
