"""The command line that starts a script or module under torchrun on this machine, for the 2-process gloo tests."""

import socket
import sys


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, processes: int = 2) -> list[str]:
    """``python -m torch.distributed.run`` with ``processes`` local processes on a free port, then ``args``
    (``"-m", "tokenmerge.image.run_eval", ...`` or a script path and its arguments)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={processes}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        *args,
    ]
