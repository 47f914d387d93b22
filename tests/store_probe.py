"""A writer beside a running command, for the fault tests: acknowledged writes, recorded where a kill cannot reach.

It creates `(:Probe {id})` nodes one at a time through the Python API and appends each id to a file,
fsynced, only after the store has answered that write; it stops when the store goes away. Every id in
the file is a write the store acknowledged, so every one must be in the graph after a restart.

    python -m tests.store_probe DATA_DIR GRAPH ACK_FILE PREFIX
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from personagraph.graph.store import FalkorStore, StoreConfig, StoreUnavailable


def write_probes(data_dir: Path, graph: str, ack_file: Path, prefix: str, pause: float = 0.02) -> int:
    """Write probes until the store is unavailable; return how many were acknowledged."""
    store = FalkorStore(StoreConfig(data_dir=data_dir, graph=graph))
    fd = os.open(ack_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    acknowledged = 0
    try:
        while True:
            ident = f"{prefix}-{acknowledged}"
            store.run("CREATE (:Probe {id: $id})", {"id": ident}, write=True)
            os.write(fd, f"{ident}\n".encode())
            os.fsync(fd)
            acknowledged += 1
            time.sleep(pause)
    except StoreUnavailable:
        return acknowledged  # the server died: everything it acknowledged is in the file
    finally:
        os.close(fd)


if __name__ == "__main__":
    data_dir, graph, ack_file, prefix = sys.argv[1:5]
    write_probes(Path(data_dir), graph, Path(ack_file), prefix)
