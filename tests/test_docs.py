"""The README and the guide in docs/ say what is true: the README stays a front page with
CI's own set-up commands, every link between the pages resolves, and every documented
``python -m nas.<command>`` line is accepted by that command's own argument parser (parsed,
never run: no Ray, no training), naming files that exist."""
import argparse
import importlib
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS]

README_MAX_LINES = 120
INSTALL = "python3 -m venv .venv && . .venv/bin/activate && python -m pip install -e '.[test]'"
TEST = "python -m pytest -q"

# documented command lines that cannot be parsed, with the reason (none so far)
UNPARSABLE: dict[str, str] = {}

SHELL_OPERATORS = {"&&", "||", "|", ";", "&"}
FENCE = re.compile(r"^```(\w*)\s*$")


def fenced_blocks(path: Path, lang: str) -> list[tuple[int, list[str]]]:
    """``(first line number, lines)`` of each fenced block in ``lang``."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        m = FENCE.match(line)
        if current is None and m and m.group(1) == lang:
            current, start = [], number + 1
        elif current is not None and line.startswith("```"):
            blocks.append((start, current))
            current = None
        elif current is not None:
            current.append(line)
    assert current is None, f"{path.name}: a ```{lang} block from line {start} is never closed"
    return blocks


def shell_lines(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, words)`` of every logical line of the file's ```bash blocks: lines
    ending in ``\\`` joined, comments dropped, an optional part written ``[--flag VALUE]``
    given (so that its flag is checked too)."""
    out = []
    for start, lines in fenced_blocks(path, "bash"):
        pending, first = "", None
        for offset, line in enumerate(lines):
            first = start + offset if not pending else first
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            text, pending = pending + line, ""
            text = re.sub(r"\[(--[^\[\]]*)\]", r"\1", text)
            words = shlex.split(text, comments=True)
            if words:
                out.append((first, words))
    return out


def _commands() -> list[tuple[str, str, list[str], str]]:
    """``(where, module, argv, text)`` of every ``python -m nas.X ...`` in a ```bash block."""
    found = []
    for page in PAGES:
        for number, words in shell_lines(page):
            for i in range(len(words) - 2):
                if words[i] in ("python", "python3") and words[i + 1] == "-m" \
                        and words[i + 2].startswith("nas."):
                    argv = []
                    for w in words[i + 3:]:
                        if w in SHELL_OPERATORS or w.startswith(">"):
                            break
                        argv.append(w)
                    text = " ".join(words[i:i + 3] + argv)
                    found.append((f"{page.relative_to(REPO)}:{number}", words[i + 2], argv, text))
    return found


def _scripts() -> list[tuple[str, str]]:
    """``(where, path)`` of every ``python benchmarks/X.py`` / ``bash benchmarks/X.sh``."""
    found = []
    for page in PAGES:
        for number, words in shell_lines(page):
            for i, w in enumerate(words[:-1]):
                if w in ("python", "python3", "bash") and words[i + 1].startswith("benchmarks/"):
                    found.append((f"{page.relative_to(REPO)}:{number}", words[i + 1]))
    return found


COMMANDS = _commands()
SCRIPTS = _scripts()


# --- the README as a front page -------------------------------------------------------------

def test_readme_is_a_front_page_with_ci_set_up_commands():
    count = len(README.read_text().splitlines())
    assert count <= README_MAX_LINES, f"README.md has {count} lines; the guide is docs/"
    blocks = [block for _, block in fenced_blocks(README, "bash")]
    assert [INSTALL] in blocks, "README: the install command, alone in its ```bash block"
    assert [TEST] in blocks, "README: the test command, alone in its ```bash block"
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert TEST in ci, ".ci/run must run the README's test command"
    assert any(line.startswith("python -m pip install") and line.endswith("-e '.[test]'")
               for line in ci), ".ci/run must install the project as the README does"


def test_readme_links_every_page_of_the_guide():
    linked = {(README.parent / target).resolve() for target, _ in links(README)}
    missing = [p.name for p in DOCS if p.resolve() not in linked]
    assert not missing, f"README's Guide does not link: {missing}"


def test_readme_study_example_is_a_valid_study(tmp_path):
    from nas.study import load_study

    examples = [block for _, block in fenced_blocks(README, "yaml")
                if any(line.startswith("space:") for line in block)]
    assert len(examples) == 1, "README: one study example (a ```yaml block with a space)"
    study = tmp_path / "example.yaml"
    study.write_text("\n".join(examples[0]) + "\n")
    cfg = load_study(study)
    assert cfg.trials and cfg.load_space().parameters


# --- links ------------------------------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TICKED_DOC = re.compile(r"`(docs/[\w.-]+\.md)`")


def links(page: Path) -> list[tuple[str, str]]:
    """``(path, anchor)`` of every relative link in ``page`` (a path relative to the page)
    and of every backticked ``docs/X.md`` (relative to the repository, as commands are:
    returned absolute)."""
    text = page.read_text()
    out = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        out.append((path or page.name, anchor))
    return out + [(str(REPO / path), "") for path in TICKED_DOC.findall(text)]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of the page's headings (outside code blocks)."""
    out, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_resolve(page):
    broken = []
    for path, anchor in links(page):
        target = (page.parent / path).resolve()
        if not target.exists():
            broken.append(f"{path}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{path}#{anchor}: no such heading")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_anchor_rule_matches_github():
    page = REPO / "docs" / "zero_cost.md"
    assert "the-16-skip-configurations-benchmarkszero_cost_correlationpy" in anchors(page)
    assert "using-it-in-a-search" in anchors(page)


# --- documented commands -----------------------------------------------------------------------

def test_the_docs_hold_the_commands_they_should():
    """An extraction bug must not pass silently with nothing to check."""
    assert len(COMMANDS) > 20, [c[3] for c in COMMANDS]
    modules = {module for _, module, _, _ in COMMANDS}
    assert {"nas.run", "nas.train", "nas.report", "nas.effects", "nas.export", "nas.promote",
            "nas.calibrate", "nas.zero_cost"} <= modules, modules
    assert SCRIPTS, "no benchmark script in the docs' ```bash blocks"


def test_shell_lines_join_continuations_and_drop_comments(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\npython -m nas.run a.yaml \\\n    --epochs 2   # two\n"
                    "python -m nas.report a.yaml [--top 3]\n```\n")
    assert shell_lines(page) == [(2, ["python", "-m", "nas.run", "a.yaml", "--epochs", "2"]),
                                 (4, ["python", "-m", "nas.report", "a.yaml", "--top", "3"])]


class _Parsed(Exception):
    """Raised instead of running a command once its parser accepted the arguments."""

    def __init__(self, namespace: argparse.Namespace):
        super().__init__()
        self.namespace = namespace


def parse(module: str, argv: list[str], monkeypatch) -> argparse.Namespace:
    """The namespace ``module``'s own parser makes of ``argv``; the command never runs."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise _Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    command = importlib.import_module(module)
    try:
        command.main(argv)
    except _Parsed as parsed:
        return parsed.namespace
    raise AssertionError(f"{module}.main returned without parsing its arguments")


def test_parse_rejects_an_unknown_flag(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse("nas.export", ["studies/quickstart.yaml", "--no-such-flag"], monkeypatch)
    assert exit_.value.code == 2 and "--no-such-flag" in capsys.readouterr().err
    assert parse("nas.export", ["studies/quickstart.yaml", "--top", "3"], monkeypatch).top == 3


def _study_files(argv: list[str]) -> list[str]:
    return [w for w in argv if re.fullmatch(r"studies/[\w.-]+\.ya?ml", w)]


@pytest.mark.parametrize("where,module,argv,text", COMMANDS,
                         ids=[f"{w} {m}" for w, m, _, _ in COMMANDS])
def test_documented_command_parses(where, module, argv, text, monkeypatch, capsys):
    if text in UNPARSABLE:
        pytest.skip(UNPARSABLE[text])
    missing = [f for f in _study_files(argv) if not (REPO / f).is_file()]
    assert not missing, f"{where}: `{text}`: no such study file {missing}"
    try:
        ns = parse(module, argv, monkeypatch)
    except SystemExit as exit_:
        reason = (capsys.readouterr().err.strip().splitlines() or ["no message"])[-1]
        pytest.fail(f"{where}: `{text}`: {module} refuses it (exit {exit_.code}): {reason}")
    if getattr(ns, "arch", None) is not None:
        import blocks

        assert ns.arch in blocks.presets(), f"{where}: `{text}`: no preset {ns.arch!r}"
    study = getattr(ns, "study", None)
    if getattr(ns, "stage", None) and study and (REPO / study).is_file():
        stages = yaml.safe_load((REPO / study).read_text()).get("promotion") or {}
        assert ns.stage in stages, f"{where}: `{text}`: {study} has no stage {ns.stage!r}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_commands_live_in_bash_blocks(page):
    """A command in an indented block or another fence would escape the checks above."""
    fenced, lang, stray = False, "", []
    for number, line in enumerate(page.read_text().splitlines(), 1):
        m = FENCE.match(line) if not fenced else None
        if m or (fenced and line.startswith("```")):
            fenced, lang = (True, m.group(1)) if m else (False, "")
        elif (fenced and lang != "bash" or not fenced and line.startswith("    ")) \
                and re.match(r"\s*(python3? |bash benchmarks/)", line):
            stray.append(f"line {number}: {line.strip()}")
    assert not stray, f"{page.relative_to(REPO)}: commands outside ```bash blocks: {stray}"


@pytest.mark.parametrize("where,script", SCRIPTS, ids=[f"{w} {s}" for w, s in SCRIPTS])
def test_documented_benchmark_script_exists(where, script):
    assert (REPO / script).is_file(), f"{where}: no such script {script}"


def test_documented_dashboard_is_installed():
    tools = {words[0] for page in PAGES for _, words in shell_lines(page)}
    assert "optuna-dashboard" in tools
    assert (Path(sys.executable).parent / "optuna-dashboard").exists()
