"""Oversized request bodies against a real server: 413 each, and the server's memory holds.

    .venv/bin/python scripts/measure_body_limits.py [--size-mb 37] [--parallel 4]

Starts `navigator serve` (one uvicorn worker, a throwaway migrated SQLite database) on a
loopback port, then sends `--parallel` anonymous sign-in bodies of `--size-mb` at once, first
with a Content-Length and then chunked (no length: counted as it streams), over raw sockets so
the client never holds a body in memory. It samples the server's RSS every 20 ms and prints
one JSON object: the statuses, RSS before, peak and after, and the rise. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from loadkit import serving  # noqa: E402

from app.db import migrate  # noqa: E402

CHUNK = b"x" * (64 * 1024)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def send(port: int, size: int, chunked: bool) -> dict[str, Any]:
    """One oversized POST; returns the status line the server answered (or the error)."""
    started = time.perf_counter()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        head = (
            "POST /api/auth/session HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\n{length}\r\n\r\n"
        )
        try:
            sock.sendall(head.encode())
            while sent < size:
                piece = CHUNK[: min(len(CHUNK), size - sent)]
                if chunked:
                    sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                else:
                    sock.sendall(piece)
                sent += len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before the whole body went: expected
        try:
            answer = sock.recv(4096).decode("latin-1")
        except OSError as error:
            answer = f"error {type(error).__name__}"
    status = answer.split(" ", 2)[1] if answer.startswith("HTTP/") else answer[:40]
    return {
        "status": status,
        "bytes_sent_before_answer": sent,
        "seconds": round(time.perf_counter() - started, 3),
    }


def burst(port: int, pid: int, size: int, parallel: int, chunked: bool) -> dict[str, Any]:
    before = rss_bytes(pid)
    peak = before
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_bytes(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(lambda _: send(port, size, chunked), range(parallel)))
    time.sleep(0.5)
    stop.set()
    sampler.join()
    after = rss_bytes(pid)
    return {
        "mode": "chunked" if chunked else "content-length",
        "statuses": [result["status"] for result in results],
        "requests": results,
        "rss_before_mb": round(before / 2**20, 1),
        "rss_peak_mb": round(peak / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "rss_rise_mb": round((peak - before) / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=37)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    size = int(args.size_mb * 2**20)
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/navigator.sqlite3"
        migrate.upgrade(url)
        env = {"NAVIGATOR_DATA_DIR": directory, "NAVIGATOR_SECRET_KEY": "m" * 40}
        with serving(url, workers=1, env=env) as (base, pid):
            port = int(base.rsplit(":", 1)[1])
            bursts = [burst(port, pid, size, args.parallel, chunked) for chunked in (False, True)]
    report = {
        "body_mb": args.size_mb,
        "parallel": args.parallel,
        "bursts": bursts,
        "all_413": all(status == "413" for b in bursts for status in b["statuses"]),
        "max_rss_rise_mb": max(b["rss_rise_mb"] for b in bursts),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
