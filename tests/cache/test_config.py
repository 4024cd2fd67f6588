"""The nginx configuration the tests run is the one the README ships: byte for byte, with only
its ports and paths replaced. (These checks need no nginx.)"""

from __future__ import annotations

import re
from pathlib import Path

from bench.nginx import ROOT, Placement, render, shipped_config


def nginx_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```nginx\n(.*?)^```$", markdown, flags=re.M | re.S)


def test_the_readme_quotes_the_tested_config_verbatim() -> None:
    blocks = nginx_blocks((ROOT / "README.md").read_text())
    assert shipped_config() in blocks, "README's ```nginx block differs from deploy/nginx.conf"
    assert len(blocks) == 1, "one nginx config in the README: the tested one"


def test_the_tests_change_only_ports_and_paths(tmp_path: Path) -> None:
    where = Placement(8443, 9000, tmp_path, tmp_path / "c.pem", tmp_path / "k.pem")
    shipped = shipped_config().splitlines()
    rendered = render(shipped_config(), where).splitlines()
    assert len(rendered) == len(shipped)
    changed = [(a.strip(), b.strip()) for a, b in zip(shipped, rendered, strict=True) if a != b]
    assert changed == [
        ("server 127.0.0.1:8000;", "server 127.0.0.1:9000;"),
        (
            "proxy_cache_path /var/cache/nginx/fundgoal levels=1:2 keys_zone=fundgoal:10m",
            f"proxy_cache_path {tmp_path}/cache levels=1:2 keys_zone=fundgoal:10m",
        ),
        ("listen 443 ssl http2;", "listen 127.0.0.1:8443 ssl http2;"),
        (
            "ssl_certificate     /etc/ssl/certs/give.example.org.pem;",
            f"ssl_certificate     {tmp_path}/c.pem;",
        ),
        (
            "ssl_certificate_key /etc/ssl/private/give.example.org.key;",
            f"ssl_certificate_key {tmp_path}/k.pem;",
        ),
    ]
