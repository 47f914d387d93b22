"""Prompt files, loaded by name: one file per prompt, in English (`.en.md`) and Chinese (`.zh.md`).

A prompt file has a system part and a user part, each opened by a marker line::

    <!-- system -->
    You are ...
    <!-- user -->
    Text: ${text}

Variables use `string.Template` syntax (`$name` / `${name}`), so JSON examples with braces need no
escaping. A user adds or overrides a prompt by putting a file of the same name in an extra folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, Iterable

PROMPTS_DIR = Path(__file__).resolve().parent
_MARKER = re.compile(r"^<!--\s*(system|user|assistant)\s*-->\s*$", re.MULTILINE)


class PromptNotFound(LookupError):
    """No prompt file of that name and language in the searched folders."""


@dataclass(frozen=True)
class Prompt:
    """A parsed prompt file: its path and its (role, template) parts in order."""

    name: str
    lang: str
    path: Path
    parts: tuple[tuple[str, str], ...]

    def variables(self) -> set[str]:
        """The template variables this prompt expects."""
        names: set[str] = set()
        for _, text in self.parts:
            for m in Template.pattern.finditer(text):
                name = m.group("named") or m.group("braced")
                if name:
                    names.add(name)
        return names

    def render(self, **values: Any) -> list[dict[str, str]]:
        """Chat messages with the variables filled in; a missing variable raises KeyError naming it."""
        missing = self.variables() - values.keys()
        if missing:
            raise KeyError(f"prompt {self.path.name} needs {sorted(missing)}")
        return [
            {"role": role, "content": Template(text).substitute(**{k: str(v) for k, v in values.items()}).strip()}
            for role, text in self.parts
        ]


def parse_prompt(path: Path, name: str = "", lang: str = "") -> Prompt:
    """Parse one prompt file; text before the first marker (or a file with none) is the user part."""
    text = path.read_text(encoding="utf-8")
    pieces = _MARKER.split(text)
    parts: list[tuple[str, str]] = []
    if pieces[0].strip():
        parts.append(("user", pieces[0]))
    for role, body in zip(pieces[1::2], pieces[2::2]):
        parts.append((role, body))
    return Prompt(name=name or path.stem, lang=lang, path=path, parts=tuple(parts))


def find_prompt(name: str, lang: str = "en", extra_dirs: Iterable[Path] = ()) -> Path:
    """Path of prompt `name` in `lang`: user folders first, then the packaged ones."""
    folders = [Path(d) for d in extra_dirs] + [PROMPTS_DIR]
    for folder in folders:
        for candidate in (folder / f"{name}.{lang}.md", folder / f"{name}.md"):
            if candidate.is_file():
                return candidate
    searched = ", ".join(str(f) for f in folders)
    raise PromptNotFound(f"no prompt {name!r} for language {lang!r} in {searched}")


def load(name: str, lang: str = "en", extra_dirs: Iterable[Path] = ()) -> Prompt:
    """Load prompt `name` (e.g. 'extract/read') in language `lang`."""
    return parse_prompt(find_prompt(name, lang, extra_dirs), name, lang)


def available(subdir: str, extra_dirs: Iterable[Path] = ()) -> list[str]:
    """Names of the prompts under `subdir` (e.g. 'synthesis'), without language suffixes."""
    names: set[str] = set()
    for folder in [Path(d) for d in extra_dirs] + [PROMPTS_DIR]:
        base = folder / subdir
        if base.is_dir():
            for f in base.glob("*.md"):
                stem = f.name[: -len(".md")]
                names.add(f"{subdir}/{stem.split('.')[0]}")
    return sorted(names)
