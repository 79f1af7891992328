"""The published artefacts: the sdist and the wheel build, pass ``twine check``, and the wheel,
installed into a fresh virtual environment (not the editable checkout), imports every module and
passes a sample of its own doctests.

jax, numpy and pytest are not downloaded again: the fresh environment sees this environment's
site-packages through a ``.pth`` path entry, which adds the directory but does not run the
``.pth`` files inside it, so the editable install's path hook never applies there and ``jaxloss``
can only come from the wheel (asserted below).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import jaxloss

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.package


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    # The timeout only guards against a hang: on an idle 2-core machine the whole module takes
    # about 1.5 CPU-minutes, but a shared machine can stretch that many times over.
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: build with this environment's setuptools instead of downloading one.
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT, cwd=out)
    return out


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    wheels = list(dist.glob("jaxloss-*.whl"))
    sdists = list(dist.glob("jaxloss-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    assert wheels[0].name.startswith(f"jaxloss-{jaxloss.__version__}-py3-none-any")
    out = run(sys.executable, "-m", "twine", "check", "--strict", *wheels, *sdists, cwd=dist)
    assert out.count("PASSED") == 2, out


def test_wheel_contents(dist: Path) -> None:
    (wheel,) = dist.glob("jaxloss-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(meta).decode()
    assert "jaxloss/py.typed" in names
    assert "jaxloss/__init__.py" in names and "jaxloss/ops/__init__.py" in names
    assert not any(n.startswith(("tests/", "docs/", "benchmarks/", "examples/")) for n in names)
    assert f"Version: {jaxloss.__version__}" in metadata
    assert "License-Expression: Apache-2.0" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    (sdist,) = dist.glob("jaxloss-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    top = f"jaxloss-{jaxloss.__version__}"
    for path in ("LICENSE", "README.md", "pyproject.toml", "jaxloss/__init__.py"):
        assert f"{top}/{path}" in members, path


def test_installed_wheel_passes_its_doctests(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("jaxloss-*.whl")
    # No PYTHONPATH: a checkout on it would shadow the wheel (and make pip skip the install).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    query = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = Path(run(python, "-c", query, cwd=tmp_path, env=env).strip())
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index"]
    run(*pip, "-q", wheel, cwd=tmp_path, env=env)
    (purelib / "_reuse_test_environment.pth").write_text(sysconfig.get_path("purelib") + "\n")

    query = "import jaxloss; print(jaxloss.__file__, jaxloss.__version__)"
    where = run(python, "-c", query, cwd=tmp_path, env=env).split()
    assert Path(where[0]).is_relative_to(purelib), where
    assert where[1] == jaxloss.__version__

    # every module the checkout has is in the wheel and imports from there
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "jaxloss").rglob("*.py")
    )
    query = "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]; print('ok')"
    assert run(python, "-c", query, *modules, cwd=tmp_path, env=env).strip() == "ok"

    # The checkout's doctests all run in the main suite; from the wheel, one module per layer
    # (a Keras-style family, the kernels) shows the installed copy computes the same.
    sample = ["_regression.py", "ops/cross_entropy.py"]
    options = ["-q", "-p", "no:cacheprovider", "--doctest-modules", "--rootdir", tmp_path]
    options += ["-o", "doctest_optionflags=NORMALIZE_WHITESPACE NUMBER"]
    options += ["-W", "ignore::DeprecationWarning"]
    paths = [purelib / "jaxloss" / name for name in sample]
    out = run(python, "-m", "pytest", *options, *paths, cwd=tmp_path, env=env)
    last = out.strip().splitlines()[-1]
    assert "passed" in last and "failed" not in last and "error" not in last, out[-2000:]
