"""Model cards are generated from the registry: regenerating them reproduces the committed ones."""
from __future__ import annotations

from tests.helpers import ROOT
from zoo.pretrained import get_entry, list_pretrained
from zoo.pretrained.cards import write_cards


def test_committed_cards_are_the_generated_ones(tmp_path):
    written = write_cards(tmp_path, ROOT / "results" / "pretrained")
    assert {p.name for p in written} == {"README.md"} | {f"{n}.md" for n in list_pretrained()}
    for path in written:
        committed = ROOT / "docs" / "pretrained" / path.name
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run python -m zoo.pretrained.cards"
    for name in list_pretrained():
        text = (tmp_path / f"{name}.md").read_text()
        entry = get_entry(name)
        assert entry.weights.sha256 in text and entry["metrics"]["split"] in text
        plots = [line for line in text.splitlines() if line.startswith("![")]
        assert plots and all((tmp_path / line.split("(")[-1].rstrip(")")).is_file() for line in plots)
