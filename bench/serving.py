"""Shared by the multi-worker benchmarks: a throwaway PostgreSQL database, `fundgoal serve`
(or a baseline app) under uvicorn's process manager, and its worker processes' memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("FUNDGOAL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def database() -> Iterator[str]:
    """A fresh PostgreSQL database (SQLAlchemy URL), dropped on exit."""
    name = f"fundgoal_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait(base: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def fundgoal_serve(env: dict[str, str], workers: int = 2) -> Iterator[tuple[str, int]]:
    """`fundgoal serve --workers N` with env on top of a cleaned environment: (base URL, pid)."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FUNDGOAL_", "STRIPE_"))}
    clean.update(env, FUNDGOAL_PUBLIC_URL=f"http://127.0.0.1:{port}")
    command = [sys.executable, "-m", "fundgoal", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--workers", str(workers)],
        cwd=ROOT,
        env=clean,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, proc, "fundgoal serve")
        yield base, proc.pid
    finally:
        _stop(proc)


@contextmanager
def baseline_serve(factory: str, workers: int = 2) -> Iterator[str]:
    """A bench.apps factory under the same uvicorn process manager and worker count."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", f"bench.apps:{factory}", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command += ["--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, proc, factory)
        yield base
    finally:
        _stop(proc)


def worker_pids(parent: int) -> list[int]:
    """uvicorn's worker processes: the children of the serve process (not its resource
    tracker, which multiprocessing also starts as a child)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [
        int(pid)
        for pid in children
        if "resource_tracker"
        not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    ]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_times(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds consumed so far by each of these processes still alive."""
    tick = os.sysconf("SC_CLK_TCK")
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return times


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two cpu_times() readings; processes born in between count fully."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (the server is shared: an upper bound)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids
