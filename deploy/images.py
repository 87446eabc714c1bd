"""Build the base stand-ins and the two images with podman (``make base-images``, ``make images``).

    python3 deploy/images.py base            # stand-ins for the official base images, from Debian
    python3 deploy/images.py build           # both images; base images: official if pullable, else stand-ins
    python3 deploy/images.py build --base standin --only torchserve

Standard library only (it runs before any venv exists). podman reads the project's own settings
(``deploy/podman/containers.conf``: runc, ulimits; ``registries.conf``: short names on Docker Hub)
through ``CONTAINERS_CONF`` / ``CONTAINERS_REGISTRIES_CONF``; a value already in the environment wins.

Where the official images cannot be pulled (no registry reachable), the stand-ins are built with
``mmdebstrap`` from Debian bookworm's packages and passed through the Dockerfiles' ``PYTHON_IMAGE``
/ ``JRE_IMAGE`` build args:

- ``localhost/ja-ner-base-python:3.11-bookworm``: Debian's Python 3.11 with ``python`` and ``pip`` on
  PATH and pip allowed to install system-wide, as in ``python:3.11-slim-bookworm``.
- ``localhost/ja-ner-base-jre:17-bookworm``: Debian's OpenJDK 17 runtime, its files (symlinks
  resolved) at ``/opt/java/openjdk``, where the Temurin image keeps it.

Builds use the host network for their RUN steps (pip, apt) and see the machine's pip configuration,
certificates and the local wheel folders that configuration names, mounted read-only; nothing of
them stays in an image. Layers are cached by podman: a second build with unchanged inputs is quick.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PODMAN_DIR = REPO / "deploy" / "podman"
IMAGES = {
    "torchserve": ("deploy/Dockerfile.torchserve", "localhost/ja-ner-torchserve:1.0"),
    "triton": ("deploy/Dockerfile.triton", "localhost/ja-ner-triton:1.0"),
}
STANDIN_PYTHON = "localhost/ja-ner-base-python:3.11-bookworm"
STANDIN_JRE = "localhost/ja-ner-base-jre:17-bookworm"
SUITE = "bookworm"


def podman_env() -> dict[str, str]:
    """The environment podman runs with: the project's containers.conf and registries.conf."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(PODMAN_DIR / "containers.conf"))
    env.setdefault("CONTAINERS_REGISTRIES_CONF", str(PODMAN_DIR / "registries.conf"))
    return env


def podman(*args: str, check: bool = True, capture: bool = False, timeout: float | None = None):
    """Run ``podman ARGS`` with the project's configuration."""
    return subprocess.run(
        ["podman", *args], env=podman_env(), check=check, text=True, timeout=timeout,
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None,
    )  # fmt: skip


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def image_size(name: str) -> str:
    out = podman("image", "inspect", "--format", "{{.Size}}", name, capture=True).stdout.strip()
    return f"{int(out) / 1e6:.0f} MB"


def _dockerfile_arg(dockerfile: str, name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)", (REPO / dockerfile).read_text(), re.M)
    if not match:
        raise SystemExit(f"{dockerfile} has no ARG {name}=...")
    return match.group(1)


def _standin(tag: str, packages: list[str], hooks: list[str]) -> None:
    if not shutil.which("mmdebstrap"):
        raise SystemExit("mmdebstrap is needed to build the base stand-ins (apt-get install mmdebstrap)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ja-ner-base-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        cmd = ["mmdebstrap", "--variant=apt", "--quiet", f"--include={','.join(packages)}"]
        cmd += [f"--customize-hook={hook}" for hook in hooks]
        subprocess.run([*cmd, SUITE, str(tarball)], check=True)
        # an imported root filesystem has no environment: PATH as in Debian's (and python's) images
        path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        podman("import", "--change", f"ENV {path}", "--change", "CMD /bin/bash", str(tarball), tag, capture=True)
    print(f"{tag}: {image_size(tag)}, built in {time.monotonic() - started:.0f} s", flush=True)


def build_standins(force: bool = False) -> None:
    """The Debian stand-ins for ``python:3.11-slim-bookworm`` and the Temurin 17 JRE image."""
    clean = 'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin'
    if force or not image_exists(STANDIN_PYTHON):
        _standin(
            STANDIN_PYTHON,
            # libpython3.11: the shared library the official image has (Triton's python backend stub links it)
            ["python3", "libpython3.11", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates"],
            [
                # the official image's pip installs system-wide; Debian marks its Python externally managed
                'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
                'ln -sf pip3 "$1"/usr/bin/pip 2>/dev/null || true',
                clean,
            ],
        )
    if force or not image_exists(STANDIN_JRE):
        _standin(
            STANDIN_JRE,
            ["openjdk-17-jre-headless"],
            [
                # a self-contained copy at the Temurin path: Debian links parts of the JRE into /etc
                'mkdir -p "$1"/opt/java && cp -rL "$1"/usr/lib/jvm/java-17-openjdk-* "$1"/opt/java/openjdk',
                '"$1"/opt/java/openjdk/bin/java -version',
                clean,
            ],
        )


def pullable(name: str, timeout_s: float = 60) -> bool:
    """True if ``name`` is present or podman can pull it within ``timeout_s``."""
    if image_exists(name):
        return True
    try:
        return podman("pull", "--quiet", name, check=False, capture=True, timeout=timeout_s).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def pip_mounts() -> list[str]:
    """``-v SRC:SRC:ro`` for the machine's pip configuration, certificates and local wheel folders."""
    paths: set[Path] = set()
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "debug"], capture_output=True, text=True)
    for line in listed.stdout.splitlines():
        match = re.match(r"\s*(/\S+), exists: True", line)
        if match:
            paths.add(Path(match.group(1)))
    values = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    for line in values.stdout.splitlines():
        _, _, value = line.partition("=")
        for item in value.strip().strip("'\"").split():
            if item.startswith("file://"):  # a local index: its pages link to files beside it
                paths.add(Path(item.removeprefix("file://")).parent)
            elif item.startswith("/"):
                paths.add(Path(item))
    for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        if os.environ.get(name, "").startswith("/"):
            paths.add(Path(os.environ[name]))
    mounts = []
    for path in sorted(p for p in paths if p.exists()):
        if any(parent in paths for parent in path.parents):
            continue  # a folder above it is mounted already
        mounts += ["-v", f"{path}:{path}:ro"]
    return mounts


def local_torch_wheel(requirements: Path) -> bool:
    """True if a find-links folder of the machine's pip configuration holds the pinned torch wheel."""
    pin = re.search(r"^torch==(\S+)$", requirements.read_text(), re.M)
    if not pin:
        return False
    version = pin.group(1)
    values = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    folders = [v.strip("'\"") for k, v in (line.split("=", 1) for line in values.splitlines() if "=" in line)
               if k.endswith("find-links")]  # fmt: skip
    folders += os.environ.get("PIP_FIND_LINKS", "").split()
    return any(any(Path(f).glob(f"torch-{version}-*.whl")) for f in folders if Path(f).is_dir())


def build(which: list[str], base: str) -> None:
    """Build ``which`` images; ``base``: auto (official if pullable, else stand-ins), official or standin."""
    python_image = _dockerfile_arg(IMAGES["torchserve"][0], "PYTHON_IMAGE")
    jre_image = _dockerfile_arg(IMAGES["torchserve"][0], "JRE_IMAGE")
    if base == "auto":
        base = "official" if pullable(python_image) and pullable(jre_image) else "standin"
        print(f"base images: {base} ({python_image}, {jre_image} {'' if base == 'official' else 'not '}pullable)")
    args: list[str] = []
    if base == "standin":
        build_standins()
        args += ["--build-arg", f"PYTHON_IMAGE={STANDIN_PYTHON}", "--build-arg", f"JRE_IMAGE={STANDIN_JRE}"]
    mounts = pip_mounts()
    for name in which:
        dockerfile, tag = IMAGES[name]
        extra = list(args)
        if local_torch_wheel(REPO / "deploy" / f"requirements-{name}.txt"):
            extra += ["--build-arg", "TORCH_INDEX_URL="]  # the local find-links folder has torch
        started = time.monotonic()
        # docker format: the OCI format has no HEALTHCHECK (podman drops it with a warning)
        podman("build", "--format", "docker", "--network", "host", "--layers", *mounts, *extra,
               "-f", dockerfile, "-t", tag, str(REPO))  # fmt: skip
        print(f"{tag}: {image_size(tag)}, built in {time.monotonic() - started:.0f} s", flush=True)
    prune = podman("image", "prune", "--force", capture=True, check=False).stdout.split()
    if prune:
        print(f"removed {len(prune)} dangling image(s)")


def preflight() -> str | None:
    """None if podman can run a container here, else the reason it cannot (make test-images skips).

    Runs ``true`` from a throw-away root filesystem (the host's ``true`` and the libraries it
    links), so the answer needs no image and no registry.
    """
    if not shutil.which("podman"):
        return "podman is not installed (apt-get install podman runc)"
    true = shutil.which("true")
    if true is None:
        return "no `true` command to run in a test container"
    with tempfile.TemporaryDirectory(prefix="ja-ner-preflight-") as tmp:
        root = Path(tmp)
        ldd = subprocess.run(["ldd", true], capture_output=True, text=True).stdout
        files = [true] + re.findall(r"(/\S+) \(0x", ldd)
        for name in files:
            target = root / name.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(name), target)
        try:
            ran = podman("run", "--rm", "--network", "none", "--rootfs", str(root), true,
                         check=False, capture=True, timeout=120)  # fmt: skip
        except subprocess.TimeoutExpired:
            return "podman run of a trivial container did not finish in 120 s"
    if ran.returncode != 0:
        return f"podman cannot run a container here: {ran.stderr.strip()[-400:]}"
    if not shutil.which("mmdebstrap") and not (image_exists(STANDIN_PYTHON) and image_exists(STANDIN_JRE)):
        python_image = _dockerfile_arg(IMAGES["torchserve"][0], "PYTHON_IMAGE")
        jre_image = _dockerfile_arg(IMAGES["torchserve"][0], "JRE_IMAGE")
        if not (pullable(python_image) and pullable(jre_image)):
            return "no base image: the official ones cannot be pulled and mmdebstrap is not installed"
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["base", "build", "preflight"])
    parser.add_argument("--base", choices=["auto", "official", "standin"], default="auto")
    parser.add_argument("--only", choices=sorted(IMAGES), action="append")
    parser.add_argument("--force", action="store_true", help="base: rebuild the stand-ins even if present")
    args = parser.parse_args(argv)
    if args.action == "preflight":  # exit 0: podman runs containers; 3: it cannot (reason on stdout)
        reason = preflight()
        print(reason or "podman runs containers here")
        sys.exit(3 if reason else 0)
    if not shutil.which("podman"):
        raise SystemExit("podman is needed (apt-get install podman runc)")
    if args.action == "base":
        build_standins(force=args.force)
    else:
        build(args.only or list(IMAGES), args.base)


if __name__ == "__main__":
    main()
