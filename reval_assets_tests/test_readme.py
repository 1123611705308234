"""The README cannot rot: its shell blocks are run, in order, as a newcomer would type them.

Every ```sh block of README.md is preceded by a marker comment, and this test fails on one without:

- `<!-- runnable -->`: run it. Options after a colon, space separated: `exit=N` (the exit code the
  README documents, default 0), `home=NAME` (the folder it runs in, default `main`; blocks of one
  home run in the README's order, each in a fresh `bash -eo pipefail`, sharing that folder and so
  its `./.reval`), `postgres` (the live store on the test PostgreSQL server: the README's example
  URL is replaced by a fresh database's; skipped if the server is down unless REVAL_REQUIRE_PG=1).
- `<!-- not-run: covered by PATH -->`: a server or the test suite itself; PATH must be a test file.

Each home runs in a temporary folder with the virtualenv's bin first on PATH (so `reval` and
`python` are this project's), no REVAL_* of the developer's, and REVAL_DOCTORS=2000 so it takes
seconds; `make` runs this checkout's Makefile without reinstalling. REVAL_README_OUTPUT=FILE
writes every block's output to FILE (how the README's sample output was made).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
EXAMPLE_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/reval"
MARKER = re.compile(r"<!--\s*(runnable|not-run)\s*:?\s*(.*?)\s*-->\s*$")
# `make` runs the checkout's Makefile, with its REVAL_HOME, without reinstalling the environment.
PRELUDE = f"""make() {{ REVAL_HOME="${{REVAL_HOME:-$PWD/.reval}}" command make --no-print-directory \\
    -C {ROOT} -o .venv/.installed-stamp "$@"; }}
"""


@dataclass
class Block:
    line: int
    code: str
    kind: str  # runnable | not-run
    options: str

    @property
    def settings(self) -> dict[str, str]:
        pairs = (word.split("=", 1) if "=" in word else (word, "yes") for word in self.options.split())
        return dict(pairs)

    @property
    def home(self) -> str:
        return self.settings.get("home", "main")

    @property
    def exit(self) -> int:
        return int(self.settings.get("exit", "0"))


def blocks() -> list[Block]:
    lines = README.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        if lines[i].strip().startswith("```sh"):
            start = i
            marker = next((MARKER.match(lines[j].strip()) for j in range(i - 1, -1, -1) if lines[j].strip()), None)
            i += 1
            body = []
            while not lines[i].strip().startswith("```"):
                body.append(lines[i])
                i += 1
            if marker is None:
                pytest.fail(f"README.md:{start + 1}: a ```sh block without <!-- runnable --> or <!-- not-run: ... -->")
            found.append(Block(start + 1, "\n".join(body) + "\n", marker.group(1), marker.group(2)))
        i += 1
    return found


def homes() -> list[str]:
    return sorted({b.home for b in blocks() if b.kind == "runnable"})


def test_every_shell_block_is_run_here_or_by_the_test_it_names():
    found = blocks()
    assert sum(b.kind == "runnable" for b in found) >= 8, "the README should show (and so test) the everyday commands"
    for block in found:
        if block.kind == "not-run":
            covered = re.fullmatch(r"covered by (\S+)(?: .*)?", block.options)
            assert covered, f"README.md:{block.line}: say `not-run: covered by PATH`"
            assert (ROOT / covered.group(1)).is_file(), f"README.md:{block.line}: {covered.group(1)} does not exist"
    text = README.read_text()
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (ROOT / image).is_file(), f"README.md shows {image}, which does not exist"


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("home", homes())
def test_readme_blocks_run_as_documented(home: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    chosen = [b for b in blocks() if b.kind == "runnable" and b.home == home]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAL_") and k != "DAGSTER_HOME"}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", REVAL_DOCTORS="2000", VIRTUAL_ENV=str(BIN.parent),
               COLUMNS="80", TERM="dumb")
    if any("postgres" in b.settings for b in chosen):
        pg_url = request.getfixturevalue("pg_url")  # a fresh database; skips if the server is down
    folder = tmp_path / home
    folder.mkdir()
    report = os.environ.get("REVAL_README_OUTPUT")
    for block in chosen:
        code = block.code
        if "postgres" in block.settings:
            assert EXAMPLE_PG_URL in code, f"README.md:{block.line}: the PostgreSQL example should use {EXAMPLE_PG_URL}"
            code = code.replace(EXAMPLE_PG_URL, pg_url)
        proc = subprocess.run(["bash", "-eo", "pipefail", "-c", PRELUDE + code], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=600)
        if report:
            with open(report, "a") as out:
                out.write(f"\n===== README.md:{block.line} (home {home}) exit {proc.returncode}\n{block.code}"
                          f"----- stdout\n{proc.stdout}----- stderr\n{proc.stderr}")
        assert proc.returncode == block.exit, (
            f"README.md:{block.line} exited {proc.returncode}, the README says {block.exit}:\n{block.code}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
