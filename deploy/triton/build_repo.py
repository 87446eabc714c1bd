"""Build a Triton model repository for ja_ner: the Python-backend adapter over the core, and a model.

Layout written (``NAME`` = ``ja_ner``, ``V`` = ``--version``)::

    OUT/NAME/config.pbtxt        rendered from deploy/triton/config.pbtxt.in
    OUT/NAME/V/model.py          deploy/triton/model.py (the adapter)
    OUT/NAME/V/ja_ner/           a copy of the core package (the stub puts V/ on sys.path)
    OUT/NAME/V/model/            the model: links to its files (a copy with --copy-model), and model.onnx

Each version directory is self-contained, so a new model version is a new ``V`` next to the old one
(``--keep-versions``); Triton's ``version_policy`` serves the latest. Usage (from the repository root)::

    PYTHONPATH=. python deploy/triton/build_repo.py --model models/ja-ner-small
    PYTHONPATH=. python deploy/triton/build_repo.py --model M --kind gpu --print-config
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from string import Template

import ja_ner
from ja_ner.errors import NerError
from ja_ner.plan import ONNX_FILE
from ja_ner.settings import Settings

LOG = logging.getLogger("deploy.triton.build_repo")

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "config.pbtxt.in"
ADAPTER = HERE / "model.py"

# Parameters model.py reads that are not Settings fields.
ADAPTER_PARAMETERS = ("model_dir", "model_version_label")
# Parts of the core the server never needs (transports' clients, generated gRPC stubs).
CORE_EXCLUDES = ("client", "proto_gen", "__pycache__", "*.pyc")


@dataclass(frozen=True)
class RepoSpec:
    """Everything that shapes one rendered ``config.pbtxt``.

    ``max_queue_delay_us`` is microseconds; ``gpus`` lists device ids (empty: all visible).
    """

    name: str = "ja_ner"
    kind: str = "cpu"  # cpu | gpu
    instance_count: int = 1
    gpus: tuple[int, ...] = ()
    max_batch_size: int = 32
    max_queue_delay_us: int = 2000
    model_dir: str = "model"
    model_version_label: str = "1.0"
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("cpu", "gpu"):
            raise ValueError(f"kind must be 'cpu' or 'gpu', got {self.kind!r}")
        if self.gpus and self.kind != "gpu":
            raise ValueError("gpus are only meaningful with kind 'gpu'")
        if self.instance_count < 1 or self.max_batch_size < 1 or self.max_queue_delay_us < 0:
            raise ValueError("instance_count and max_batch_size must be >= 1, max_queue_delay_us >= 0")
        known = {f.name for f in fields(Settings)} - {"device"}
        unknown = sorted(set(self.settings) - known)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
        Settings.from_mapping(dict(self.settings))  # type and range checks, same as the server's


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(spec: RepoSpec) -> str:
    """The ``config.pbtxt`` text for ``spec`` (parameter values are strings, as Triton requires)."""
    parameters = {"model_dir": spec.model_dir, "model_version_label": spec.model_version_label}
    parameters.update(sorted(spec.settings.items()))
    blocks = "\n".join(
        f"parameters {{ key: {_quote(k)} value: {{ string_value: {_quote(str(v))} }} }}" for k, v in parameters.items()
    )
    gpus = f"\n    gpus: [ {', '.join(str(g) for g in spec.gpus)} ]" if spec.gpus else ""
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        name=spec.name,
        max_batch_size=spec.max_batch_size,
        max_queue_delay_us=spec.max_queue_delay_us,
        instance_count=spec.instance_count,
        instance_kind="KIND_GPU" if spec.kind == "gpu" else "KIND_CPU",
        gpus=gpus,
        parameters=blocks,
    )


def _check_model_dir(model: Path) -> None:
    missing = [n for n in ("config.json", "tokenizer.json") if not (model / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{model} is not a token-classification model directory (missing {missing})")


def build_repo(
    model: Path,
    out: Path,
    spec: RepoSpec = RepoSpec(),
    *,
    version: int = 1,
    copy_model: bool = False,
    keep_versions: bool = False,
    onnx: bool = True,
) -> Path:
    """Write (or rewrite) ``out/spec.name`` and return the model's directory in the repository.

    Args:
        model: the model directory (``config.json``, weights, ``tokenizer.json``).
        out: the model repository root (created if missing).
        version: the Triton version directory to write (an integer >= 1).
        copy_model: copy the model files instead of symlinking to ``model`` (for images/volumes).
        keep_versions: keep other version directories already there (rolling a new version).
        onnx: put the model's ONNX graph beside it (``ja_ner.forward.cached_onnx``), for ONNX Runtime.

    Raises:
        FileNotFoundError: ``model`` is not a model directory.
        FileExistsError: ``out/spec.name`` exists but is not a model directory this tool wrote.
    """
    model = Path(model).resolve()
    _check_model_dir(model)
    if version < 1:
        raise ValueError(f"version must be >= 1, got {version}")
    model_root = Path(out) / spec.name
    if model_root.exists() and not (model_root / "config.pbtxt").is_file() and any(model_root.iterdir()):
        raise FileExistsError(f"{model_root} exists and has no config.pbtxt; refusing to overwrite it")
    if model_root.exists() and not keep_versions:
        shutil.rmtree(model_root)
    version_dir = model_root / str(version)
    if version_dir.exists():
        shutil.rmtree(version_dir)
    version_dir.mkdir(parents=True)

    shutil.copy2(ADAPTER, version_dir / "model.py")
    core = Path(ja_ner.__file__).resolve().parent
    shutil.copytree(core, version_dir / "ja_ner", ignore=shutil.ignore_patterns(*CORE_EXCLUDES))
    target = version_dir / spec.model_dir
    if copy_model:
        shutil.copytree(model, target, ignore=shutil.ignore_patterns(".*"))
        if onnx and not (target / ONNX_FILE).exists():
            from ja_ner.forward import cached_onnx  # torch only when a graph is exported

            shutil.copy2(cached_onnx(model), target / ONNX_FILE)
    elif onnx:  # links to the model's files, so the exported graph can sit beside them
        from ja_ner.forward import linked_with_onnx

        linked_with_onnx(model, target)
    else:
        target.symlink_to(model, target_is_directory=True)
    (model_root / "config.pbtxt").write_text(render_config(spec), encoding="utf-8")
    LOG.info("wrote %s (version %d, model %s %s)", model_root, version, "copy of" if copy_model else "->", model)
    return model_root


def _parse_setting(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {raw!r}")
    return key.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring and ``--help``."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    parser.add_argument("--out", type=Path, default=Path("build/triton/model_repository"))
    parser.add_argument("--name", default="ja_ner")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--kind", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--instances", type=int, default=1, help="instances per device (or in all, CPU)")
    parser.add_argument("--gpus", default="", help="comma-separated GPU ids for --kind gpu (default all)")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-queue-delay-us", type=int, default=2000)
    parser.add_argument("--model-version-label", default="1.0", help='"model_version" in answers')
    parser.add_argument("--setting", type=_parse_setting, action="append", default=[], metavar="K=V")
    parser.add_argument("--copy-model", action="store_true", help="copy instead of symlink the model")
    parser.add_argument("--keep-versions", action="store_true", help="keep other version directories")
    parser.add_argument("--print-config", action="store_true", help="print config.pbtxt, write nothing")
    args = parser.parse_args(argv)
    try:
        spec = RepoSpec(
            name=args.name,
            kind=args.kind,
            instance_count=args.instances,
            gpus=tuple(int(g) for g in args.gpus.split(",") if g.strip()),
            max_batch_size=args.max_batch_size,
            max_queue_delay_us=args.max_queue_delay_us,
            model_version_label=args.model_version_label,
            settings=dict(args.setting),
        )
        if args.print_config:
            sys.stdout.write(render_config(spec))
            return 0
        build_repo(
            args.model,
            args.out,
            spec,
            version=args.version,
            copy_model=args.copy_model,
            keep_versions=args.keep_versions,
        )
    except (ValueError, FileNotFoundError, FileExistsError, NerError) as exc:
        LOG.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
