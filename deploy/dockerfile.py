"""A small Dockerfile reader for the checks that stand in for `docker build` (no engine here).

Enough for this project's two Dockerfiles: line continuations, comments, ARG defaults in FROM,
ENV ``k=v`` lists, exec-form JSON arrays. Not a general parser (no heredocs, no escape directive).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    """One instruction: upper-case keyword, ``--flag=value`` options, the rest as written."""

    keyword: str
    flags: tuple[tuple[str, str], ...]
    args: str
    line: int

    def flag(self, name: str) -> str | None:
        """The value of ``--name=value``, or None."""
        return next((v for k, v in self.flags if k == name), None)

    def exec_form(self) -> list[str] | None:
        """The JSON-array (exec) form of CMD/ENTRYPOINT/RUN, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"line {self.line}: exec form must be a JSON array of strings")
        return value


def parse(path: Path) -> list[Instruction]:
    """Instructions of ``path`` in order (continuations joined, comments dropped)."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].rstrip() if continued else stripped)
        if continued:
            continue
        text = " ".join(p for p in pending if p)
        pending = []
        keyword, _, rest = text.partition(" ")
        flags = []
        rest = rest.strip()
        while rest.startswith("--"):
            token, _, rest = rest.partition(" ")
            name, _, value = token[2:].partition("=")
            flags.append((name, value))
            rest = rest.strip()
        instructions.append(Instruction(keyword.upper(), tuple(flags), rest, start))
    if pending:
        raise ValueError(f"{path}: the last instruction ends with a line continuation")
    return instructions


def arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    """``ARG name=default`` values declared before the first FROM (those FROM may use)."""
    defaults: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            defaults[name.strip()] = value.strip()
    return defaults


def base_images(instructions: list[Instruction]) -> list[str]:
    """Every FROM image with ARG defaults substituted (``AS name`` dropped)."""
    defaults = arg_defaults(instructions)
    images = []
    for ins in instructions:
        if ins.keyword == "FROM":
            image = ins.args.split()[0]
            images.append(re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), image))
    return images


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    """The instructions of the last stage (from its FROM on): what the image runs."""
    last = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last:]


def env(instructions: list[Instruction]) -> dict[str, str]:
    """Environment set by ENV instructions (``k=v`` pairs; values may be quoted)."""
    values: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword != "ENV":
            continue
        for item in shlex.split(ins.args):
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"line {ins.line}: use ENV key=value")
            values[name] = value
    return values
