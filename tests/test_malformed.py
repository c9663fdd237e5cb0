"""A corpus of malformed study and space files (tests/malformed/): each gives exit 2 and
one line naming the file, the field and what is allowed, within seconds; never a
traceback, never a trial. The first line of each file says what it must say."""
import re
import shutil
import time
from pathlib import Path

import pytest

from nas.run import main as run_main
from search_spaces import SpaceError, load_space

CORPUS = Path(__file__).parent / "malformed"
STUDIES = sorted(p.name for p in CORPUS.glob("*.yaml") if not p.name.startswith("space_"))
SPACES = sorted(p.name for p in CORPUS.glob("space_*.yaml"))


def expected(path: Path) -> str | None:
    head = path.read_bytes().split(b"\n", 1)[0].decode("ascii")
    return head.removeprefix("# expect: ") if head.startswith("# expect: ") else None


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A copy: files whose storage or run folder is relative must not write into tests/."""
    dest = tmp_path_factory.mktemp("malformed")
    for f in CORPUS.glob("*.yaml"):
        shutil.copy(f, dest / f.name)
    return dest


def test_the_corpus_is_large():
    assert len(STUDIES) + len(SPACES) >= 50


@pytest.mark.parametrize("name", STUDIES)
def test_a_malformed_study_is_one_line(name, corpus, capsys):
    path = corpus / name
    started = time.time()
    assert run_main([str(path)]) == 2
    err = capsys.readouterr().err
    # one line naming the file: the study, or the space file it names when the problem is there
    assert re.match(rf"error: {re.escape(str(corpus))}/\w+\.yaml: ", err) and err.count("\n") == 1, err
    assert expected(path) in err, err
    assert time.time() - started < 15


@pytest.mark.parametrize("name", SPACES)
def test_a_malformed_space_is_one_line(name, corpus):
    path = corpus / name
    want = expected(path)
    if want is None:  # loads; its study fails (see space_file_huge_width.yaml)
        load_space(path)
        return
    with pytest.raises(SpaceError) as err:
        load_space(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
    assert want in str(err.value), str(err.value)
