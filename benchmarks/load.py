"""Load benchmark of ``semstyle serve`` (issue 14): many clients at once against a real server process.

Each of ``--clients`` threads sends ``--requests`` stylize requests (a real photo, a gallery
painting) back to back. Reported: how many replies were 200, 503 (busy, with Retry-After) or
anything else (there must be none), p50 and p95 latency of the 200s, and the server's peak resident
memory (VmHWM of its process). Run: ``.venv/bin/python benchmarks/load.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_memory_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_load(url: str, photo: bytes, clients: int, requests: int, size: int) -> list[tuple[int, float]]:
    import httpx

    def client(_: int) -> list[tuple[int, float]]:
        results = []
        with httpx.Client(timeout=300) as session:
            for _ in range(requests):
                start = time.perf_counter()
                try:
                    reply = session.post(url + "/v1/stylize", files={"content": ("photo.jpg", photo)},
                                         data={"style_id": "starry_night", "size": str(size)})
                    results.append((reply.status_code, time.perf_counter() - start))
                except httpx.HTTPError:
                    results.append((-1, time.perf_counter() - start))
        return results

    with ThreadPoolExecutor(clients) as pool:
        return [r for batch in pool.map(client, range(clients)) for r in batch]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=4, help="per client")
    p.add_argument("--size", type=int, default=384, help="longer side of the stylized photo (default 384)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--queue", type=int, default=8)
    p.add_argument("--model", help="semstyle model (default: the shipped one)")
    args = p.parse_args(argv)
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "semstyle.cli", "serve", "--port", str(port), "--workers", str(args.workers),
               "--queue", str(args.queue)] + (["--model", args.model] if args.model else [])
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        photo = (common.DATA_DIR / "content" / "chicago.jpg").read_bytes()
        start = time.perf_counter()
        results = run_load(url, photo, args.clients, args.requests, args.size)
        wall = time.perf_counter() - start
        memory = peak_memory_mib(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    ok = [t for code, t in results if code == 200]
    busy = sum(code == 503 for code, _ in results)
    other = [code for code, _ in results if code not in (200, 503)]
    rows = [["requests", len(results)], ["200", len(ok)], ["503 (busy)", busy], ["other", len(other)],
            ["p50 latency of 200s, s", common.fmt(percentile(ok, 0.5))],
            ["p95 latency of 200s, s", common.fmt(percentile(ok, 0.95))],
            ["throughput, images/s", common.fmt(len(ok) / wall)], ["server peak RSS, MiB", common.fmt(memory, 0)]]
    common.print_table(f"{args.clients} clients x {args.requests} requests, {args.size} px, {args.workers} workers, "
                       f"queue {args.queue}", ["measure", "value"], rows)
    return 1 if other else 0


if __name__ == "__main__":
    sys.exit(main())
