"""Generate the REST clients from docs/openapi.yaml into build/clients/ (``make clients``).

- ``build/clients/python/``: a pip-installable package ``ja_ner_api_client`` written by
  openapi-python-client (pinned in requirements.lock), settings in clients/python/config.yaml.
- ``build/clients/ts/``: ``src/api.ts`` written by openapi-typescript, next to the example program
  clients/ts/src/ner.ts, type-checked in strict mode and compiled to ``dist/`` with tsc; the npm
  packages (openapi-typescript, openapi-fetch, typescript) come from clients/ts/package-lock.json.

Each client is regenerated only when its inputs changed (a digest in ``.generated.json``), so the
client tests call the same functions at no cost once ``make clients`` has run. Generated code is
never committed (build/ is ignored).

    python -m clients.generate [python|ts ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "docs" / "openapi.yaml"
OUT = REPO / "build" / "clients"
PY_CONFIG = REPO / "clients" / "python" / "config.yaml"
PY_PACKAGE = "ja_ner_api_client"  # package_name_override in PY_CONFIG
TS_SOURCE = REPO / "clients" / "ts"
TS_FILES = ("package.json", "package-lock.json", "tsconfig.json", "src/ner.ts")
STAMP = ".generated.json"

# openapi-python-client's own lines around its warnings (not warnings themselves).
_PY_BOILERPLATE = ("Generating ", "Warning(s) encountered", "If you believe this was a mistake")


class ToolMissing(RuntimeError):
    """node/npm are not installed, or the npm packages could not be installed (no registry)."""


@dataclass(frozen=True)
class Generated:
    """A generated client: its folder and the generator's warnings about the document (one per line)."""

    path: Path
    warnings: tuple[str, ...]


def _digest(*parts: Path | str) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.read_bytes() if isinstance(part, Path) else part.encode())
        sha.update(b"\0")
    return sha.hexdigest()


def _cached(out: Path, key: str) -> Generated | None:
    try:
        stamp = json.loads((out / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Generated(out, tuple(stamp["warnings"])) if stamp.get("key") == key else None


def _record(out: Path, key: str, warnings: list[str]) -> Generated:
    (out / STAMP).write_text(json.dumps({"key": key, "warnings": warnings}, indent=1) + "\n", encoding="utf-8")
    return Generated(out, tuple(warnings))


def _python_warnings(output: str) -> list[str]:
    """The generator's warning lines: its unindented lines, less the JSON it quotes and its boilerplate."""
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line[0].isspace()]
    return [line for line in lines if line not in ("{", "}") and not line.startswith(_PY_BOILERPLATE)]


def python_client(out: Path = OUT / "python") -> Generated:
    """Generate (if its inputs changed) the Python client; ``out`` then holds setup.py and the package.

    Raises:
        subprocess.CalledProcessError: the generator failed (its output is in the exception).
    """
    key = _digest(SPEC, PY_CONFIG, version("openapi-python-client"))
    if cached := _cached(out, key):
        return cached
    bin_dir = Path(sys.executable).parent  # the generator and ruff (its formatting hook) of this venv
    run = subprocess.run(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", str(SPEC), "--config", str(PY_CONFIG),
         "--meta", "setup", "--output-path", str(out), "--overwrite"],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    warnings = _python_warnings(run.stdout + run.stderr)
    if not (out / PY_PACKAGE / "__init__.py").is_file() or any("not in PATH" in w for w in warnings):
        raise subprocess.CalledProcessError(run.returncode, run.args, run.stdout, run.stderr)
    return _record(out, key, warnings)


def _npm(out: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["npm", *args], cwd=out, capture_output=True, text=True, timeout=timeout)


def ts_client(out: Path = OUT / "ts") -> Generated:
    """Install the pinned npm packages, generate ``src/api.ts`` and type-check/compile ``src/ner.ts``.

    Raises:
        ToolMissing: no node or npm, or ``npm ci`` failed (for example, no registry reachable).
        subprocess.CalledProcessError: openapi-typescript or tsc failed (a type error is a failure).
    """
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        raise ToolMissing(f"{' and '.join(missing)} not installed (the TypeScript client needs Node 20+ and npm)")
    sources = [TS_SOURCE / name for name in TS_FILES]
    key = _digest(SPEC, *sources)
    if (cached := _cached(out, key)) and (out / "dist" / "ner.js").is_file():
        return cached
    (out / "src").mkdir(parents=True, exist_ok=True)
    for name, source in zip(TS_FILES, sources, strict=True):
        shutil.copyfile(source, out / name)
    lock_key = _digest(out / "package-lock.json")
    installed = out / "node_modules" / ".lock-digest"
    if not installed.is_file() or installed.read_text() != lock_key:
        npm = _npm(out, "ci", "--no-audit", "--no-fund", "--loglevel=error")
        if npm.returncode != 0:
            said = [line for line in (npm.stderr or npm.stdout).splitlines() if line.strip() and " at " not in line]
            raise ToolMissing(f"npm ci failed in {out} (is the npm registry reachable?): {' / '.join(said[:4])}")
        installed.write_text(lock_key)
    bin_dir = out / "node_modules" / ".bin"
    gen = subprocess.run(
        [str(bin_dir / "openapi-typescript"), str(SPEC), "--output", "src/api.ts"],
        cwd=out, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    # Its two progress lines ("✨ openapi-typescript 7.13.0", "🚀 docs/openapi.yaml → src/api.ts") are not warnings.
    lines = [line.strip() for line in (gen.stdout + gen.stderr).splitlines() if line.strip()]
    warnings = [line for line in lines if "openapi-typescript" not in line and "→" not in line]
    subprocess.run(
        [str(bin_dir / "tsc"), "--project", "tsconfig.json", "--strict"],
        cwd=out, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return _record(out, key, warnings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    makers = {"python": python_client, "ts": ts_client}
    parser.add_argument("clients", nargs="*", metavar="python|ts", help="default: both")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.clients) - set(makers))
    if unknown:
        parser.error(f"unknown client(s): {', '.join(unknown)}; known: python, ts")
    for name in args.clients or makers:
        try:
            generated = makers[name]()
        except subprocess.CalledProcessError as exc:
            print(f"{name}: {' '.join(exc.cmd)} failed\n{exc.stdout}{exc.stderr}", file=sys.stderr)
            return 1
        except ToolMissing as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: {generated.path.relative_to(REPO)}")
        for warning in generated.warnings:
            print(f"  generator warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
