"""The built wheel: one top-level name, `personagraph`, holding every module, query and prompt of the layout's folders."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# layout folder -> where it lives in the installed package
FOLDERS = {"pipeline": "personagraph", "graph": "personagraph/graph", "cypher": "personagraph/cypher",
           "prompts": "personagraph/prompts"}
SHIPPED = (".py", ".cypher", ".md", ".txt", ".toml")


def test_the_wheel_holds_every_file_under_the_personagraph_name_and_nothing_else(tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("personagraph-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"personagraph"}
    expected = {f"{package}/{path.relative_to(ROOT / folder).as_posix()}"
                for folder, package in FOLDERS.items()
                for path in (ROOT / folder).rglob("*")
                if path.suffix in SHIPPED and "__pycache__" not in path.parts}
    assert expected - names == set()
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "personagraph = personagraph.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_the_wheel_holds_the_web_apps_front_end_whatever_its_files_are(tmp_path: Path) -> None:
    static = ROOT / "pipeline" / "web" / "static"
    probe = static / "vendor" / "probe-lib" / "dist" / "probe.min.js"  # a vendored npm file, nested as they are
    made = not probe.exists()
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text("/* probe */\n")
    try:
        built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                               capture_output=True, text=True, timeout=300)
        assert built.returncode == 0, built.stderr
        [wheel] = tmp_path.glob("personagraph-*.whl")
        names = set(zipfile.ZipFile(wheel).namelist())
        expected = {f"personagraph/web/static/{path.relative_to(static).as_posix()}"
                    for path in static.rglob("*") if path.is_file() and "__pycache__" not in path.parts}
        assert "personagraph/web/static/vendor/probe-lib/dist/probe.min.js" in expected
        assert expected - names == set()
    finally:
        if made:
            probe.unlink()
            for folder in (probe.parent, probe.parent.parent, static / "vendor", static):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            # setuptools builds in the checkout's build/, which later wheels reuse: leave no probe there.
            shutil.rmtree(ROOT / "build" / "lib" / "personagraph" / "web" / "static" / "vendor" / "probe-lib", ignore_errors=True)
