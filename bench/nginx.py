"""Debian's nginx, run unprivileged with the configuration the README ships, for tests/cache/
and bench/cache.py.

`deploy/nginx.conf` is the file operators install (README, Deployment, quotes it verbatim). Here
it is used as is, with only its addresses and paths replaced (each replacement must match
exactly once, so a reshaped config fails loudly instead of being half-substituted), and wrapped
in the few main-context lines Debian's own /etc/nginx/nginx.conf would provide: a pid file, an
error log, temp directories, all under one scratch directory. No root, no system service.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "deploy" / "nginx.conf"
START_TIMEOUT = 20.0  # seconds; nginx starts in milliseconds, the machine may be busy


def nginx_binary() -> str | None:
    """Debian installs nginx in /usr/sbin, which is not on every user's PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def shipped_config() -> str:
    return SHIPPED.read_text()


@dataclass(frozen=True)
class Placement:
    """Where this run's nginx listens and keeps its files, and where the origin is."""

    port: int  # nginx's TLS port on 127.0.0.1
    upstream_port: int  # the origin (or anything relaying to it) on 127.0.0.1
    workdir: Path  # prefix: pid, logs, temp and cache directories
    cert: Path
    key: Path


def render(config: str, where: Placement) -> str:
    """The shipped config with this run's ports and paths; nothing else changes."""
    replacements = [
        ("listen 443 ssl", f"listen 127.0.0.1:{where.port} ssl"),
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{where.upstream_port};"),
        ("proxy_cache_path /var/cache/nginx/fundgoal ", f"proxy_cache_path {where.workdir}/cache "),
        ("/etc/ssl/certs/give.example.org.pem", str(where.cert)),
        ("/etc/ssl/private/give.example.org.key", str(where.key)),
    ]
    for old, new in replacements:
        count = config.count(old)
        if count != 1:
            raise ValueError(f"deploy/nginx.conf: expected {old!r} exactly once, found {count}")
        config = config.replace(old, new)
    return config


def main_config(where: Placement, *, access_log: bool, workers: int = 2) -> str:
    """What Debian's nginx.conf supplies around conf.d/*.conf, pointed at the scratch dir."""
    w = where.workdir
    # A master started as root hands requests to workers running as `nobody`, who could not
    # enter pytest's private temp directory; as an ordinary user the directive is not needed.
    user = "user root;\n" if os.geteuid() == 0 else ""
    log = (
        "log_format cache '$request_method $request_uri $status $upstream_cache_status "
        f"$upstream_status';\n    access_log {w}/access.log cache;"
        if access_log
        else "access_log off;"
    )
    return f"""daemon off;
{user}worker_processes {workers};
pid {w}/nginx.pid;
error_log {w}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    {log}
    client_body_temp_path {w}/tmp/body;
    proxy_temp_path {w}/tmp/proxy;
    fastcgi_temp_path {w}/tmp/fastcgi;
    uwsgi_temp_path {w}/tmp/uwsgi;
    scgi_temp_path {w}/tmp/scgi;
    include {w}/fundgoal.conf;
}}
"""


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (the shipped config terminates TLS)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError("openssl is required to make the test certificate")
        subprocess.run(
            [
                *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
                *("-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
        )
    return cert, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NginxFailed(RuntimeError):
    pass


@contextmanager
def running_nginx(
    where: Placement, *, access_log: bool = True, workers: int = 2, core: str | None = None
) -> Iterator[Path]:
    """nginx with the shipped config until the block exits; yields its work directory.
    `core` pins it (and its workers) to one CPU, for benchmarks."""
    binary = nginx_binary()
    if binary is None:
        raise NginxFailed("nginx is not installed (apt-get install nginx)")
    w = where.workdir
    for sub in ("cache", "tmp"):
        (w / sub).mkdir(parents=True, exist_ok=True)
    (w / "fundgoal.conf").write_text(render(shipped_config(), where))
    (w / "nginx.conf").write_text(main_config(where, access_log=access_log, workers=workers))
    command = [binary, "-p", f"{w}/", "-c", str(w / "nginx.conf"), "-e", str(w / "error.log")]
    checked = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        raise NginxFailed(f"nginx rejected the config:\n{checked.stderr}")
    if core is not None and shutil.which("taskset"):
        command = ["taskset", "-c", core, *command]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(where.port, proc, w)
        yield w
    finally:
        _stop(proc)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (
                    (workdir / "error.log").read_text() if (workdir / "error.log").exists() else ""
                )
                raise NginxFailed(f"nginx did not start on port {port}:\n{log}") from None
            time.sleep(0.02)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # SIGTERM is nginx's fast stop (the graceful SIGQUIT would wait on idle keep-alives).
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)
