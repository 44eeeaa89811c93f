"""Packaging: the wheel carries the gallery (`styles/` → `fastnst/_gallery/`), and the library finds it both in a
checkout and in an installed wheel. The end-to-end check (build, install into a fresh venv, paint offline) is
`.ci/wheel_check.sh`, which `.ci/run` calls; it takes about a minute, so it is not part of the pytest suite."""
import fnmatch
import tomllib
from pathlib import Path

import fastnst.styles

ROOT = Path(__file__).resolve().parent.parent


def test_every_gallery_file_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["fastnst._gallery"] == "styles"
    assert "fastnst._gallery" in config["packages"]
    globs = config["package-data"]["fastnst._gallery"]
    files = [p.relative_to(ROOT / "styles").as_posix() for p in (ROOT / "styles").rglob("*") if p.is_file()]
    assert files
    missed = [f for f in files if not any(fnmatch.fnmatch(f, g) or fnmatch.fnmatch(f, g.replace("**/", ""))
                                          for g in globs)]
    assert not missed, f"gallery files the wheel would leave out: {missed}"


def test_the_shipped_recipes_are_package_data():
    """training/recipes/*.json travel in the wheel: training.fit reads fit.json wherever it is installed."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["training"]
    files = [p.relative_to(ROOT / "training").as_posix() for p in (ROOT / "training" / "recipes").iterdir()]
    assert files and all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files), files


def test_every_package_is_listed():
    """`packages` is an explicit list (the gallery mapping needs one): a new subpackage must be added to it."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in ("fastnst", "training")
             for p in (ROOT / top).rglob("__init__.py")}
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"


def test_checkout_finds_styles_beside_the_package():
    assert fastnst.styles._default_styles_dir() == ROOT / "styles"


def test_installed_wheel_finds_its_own_copy(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "fastnst"
    (package / "_gallery" / "starry-night").mkdir(parents=True)
    (tmp_path / "site-packages" / "styles").mkdir()  # someone else's top-level folder: never the gallery
    monkeypatch.setattr(fastnst.styles, "__file__", str(package / "styles.py"))
    assert fastnst.styles._default_styles_dir() == package / "_gallery"
