"""Copy the dashboard's third-party browser libraries into the package.

``npm ci --ignore-scripts`` (run here by ``make vendor`` and by the wheel's build hook)
puts the versions pinned in ``package-lock.json`` into ``node_modules/``; this script
copies only the files the page loads into ``src/gpshub_dashboard/static/vendor/``,
which git ignores: no third-party code is committed.  ``--npm`` runs ``npm ci`` first.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = HERE / "node_modules"
TARGET = HERE / "src" / "gpshub_dashboard" / "static" / "vendor"

FILES: dict[str, list[str]] = {
    # package directory: files and folders (relative to it) the page needs
    "leaflet": ["dist/leaflet.js", "dist/leaflet.css", "dist/images", "LICENSE"],
    "leaflet.markercluster": [
        "dist/leaflet.markercluster.js",
        "dist/MarkerCluster.css",
        "dist/MarkerCluster.Default.css",
        "MIT-LICENCE.txt",
    ],
    "@geoman-io/leaflet-geoman-free": [
        "dist/leaflet-geoman.min.js",
        "dist/leaflet-geoman.css",
        "LICENSE",
    ],
    "uplot": ["dist/uPlot.iife.min.js", "dist/uPlot.min.css", "LICENSE"],
}


def npm_ci() -> None:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("vendor: npm is not installed (Debian: apt-get install npm)")
    command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
    subprocess.run(command, cwd=HERE, check=True)  # noqa: S603 (npm, found on PATH)


def copy(target: Path = TARGET) -> list[Path]:
    """Copy the files of ``FILES`` into ``target`` (emptied first); the files copied."""
    if target.exists():
        shutil.rmtree(target)
    copied: list[Path] = []
    for package, names in FILES.items():
        dest = target / package.split("/")[-1]
        for name in names:
            src = MODULES / package / name
            if not src.exists():
                sys.exit(f"vendor: {src} is missing: run npm ci --ignore-scripts in {HERE}")
            out = dest / Path(name).name
            out.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, out)
                copied.extend(p for p in out.rglob("*") if p.is_file())
            else:
                shutil.copy2(src, out)
                copied.append(out)
    return copied


def main() -> None:
    if "--npm" in sys.argv[1:]:
        npm_ci()
    files = copy()
    print(f"vendor: {len(files)} files in {TARGET.relative_to(HERE)}")


if __name__ == "__main__":
    main()
