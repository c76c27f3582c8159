"""`dflite report`: the committed notebooks as a static site that opens from disk."""
from __future__ import annotations

import re

import pytest
from dflite import paths, reproduce, site
from dflite.cli import main
from dflite.folders import OutputFolderError


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return site.build(tmp_path_factory.mktemp("site") / "report", progress=False)


def test_every_notebook_gets_a_page_with_its_figures_and_the_index_links_them_all(built):
    index = (built / "index.html").read_text()
    for nb in reproduce.notebooks():
        page = built / f"{nb.stem}.html"
        text = page.read_text()
        assert f'href="{page.name}"' in index, nb.name
        assert "data:image/png;base64," in text, f"{page.name}: no embedded figure"
        assert str(paths.ROOT) not in text, f"{page.name}: a machine path"
    assert re.search(r"<li><a href=\"03_lottery_tickets.html\"><b>03_lottery_tickets</b></a>: 03 · Lottery tickets",
                     index)
    assert "<h2>Findings</h2>" in index and "<table>" in index  # the generated findings, tables included
    assert str(paths.ROOT) not in index


def test_a_folder_dflite_did_not_make_is_refused_and_its_own_is_rebuilt(built, tmp_path, capsys):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="was not made by `dflite report`"):
        site.build(theirs, progress=False)
    assert main(["report", "--out", str(theirs)]) == 2 and "dflite report:" in capsys.readouterr().err
    assert (theirs / "notes.txt").read_text() == "mine" and not (theirs / "index.html").exists()
    assert site.build(built, progress=False) == built  # its own folder: built again
