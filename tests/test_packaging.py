"""A non-editable install of the wheel serves its templates and widget files from site-packages."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import sys
from pathlib import Path
import fundgoal
from fundgoal.resources import templates_dir, widgets_dir
from fundgoal.config import Settings
from fundgoal.web.app import create_app
from starlette.testclient import TestClient

package = Path(fundgoal.__file__).resolve().parent
assert package.is_relative_to(Path(sys.prefix).resolve()), package  # not the source tree
assert templates_dir().is_relative_to(package), templates_dir()
assert widgets_dir().is_relative_to(package), widgets_dir()
assert (templates_dir() / "demo.html").is_file()
assert (widgets_dir() / "widget.js").is_file()
settings = Settings(database_url="sqlite:///" + sys.argv[1], env="test")
with TestClient(create_app(settings)) as client:
    page = client.get("/demo")
    assert page.status_code == 200 and "data-fundgoal" in page.text, page.status_code
    # The served script is built from the shipped source, minified, within its budget.
    script = client.get("/widget.js")
    assert script.status_code == 200 and "/*" not in script.text, script.text[:200]
    source = (widgets_dir() / "widget.js").read_text()
    assert len(script.content) < len(source) / 1.8, (len(script.content), len(source))
    from fundgoal.widget_build import BUDGET, built
    assert built().gzipped_size <= BUDGET
print("installed-ok")
"""


@pytest.mark.slow
def test_wheel_ships_templates_and_widgets(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=300,
    )
    wheel = next(dist.glob("fundgoal-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "fundgoal/_shipped/templates/demo.html" in names
    assert "fundgoal/_shipped/widgets/widget.js" in names
    assert "fundgoal/_shipped/widgets/widget.css" in names
    assert any(n.startswith("fundgoal/migrations/versions/0001") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        timeout=300,
    )
    # The dependencies come from this test run's environment (a .pth file), so the test needs
    # no network; fundgoal itself comes only from the wheel.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = subprocess.run(
        [str(python), "-c", CHECK, str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "installed-ok" in result.stdout
