"""`cmkctl explain RULE` and the rule reference it shares with docs/rules.md and docs/azure-wire.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from controller.cli.app import main
from controller.model.limits import CURRENT, SEED
from controller.model.rules import RULES, Rule
from controller.render.rules import BEGIN_MARK, END_MARK, rules_markdown

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# where the repository's own text lives (code, tests, docs, examples); not .venv or build output
CITING = ("controller", "emulator", "tests", "bench", "demo", "examples", "docs", "helm")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_explain_c4_prints_the_rule_with_both_profiles_lock_lengths(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "explain", "C4")

    assert (code, err) == (0, "")
    assert out.startswith("C4  capacity decrease")
    assert f"{CURRENT.capacity_lock.days} days" in out and f"{SEED.capacity_lock.days} days" in out
    assert "Azure today:" in out and "cmkctl:" in out and "Source:" in out
    assert "docs/rules.md" in out


def test_explain_takes_the_id_in_any_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "explain", "w3")[1] == run(capsys, "explain", "W3")[1]


def test_explain_unknown_id_exits_1_and_lists_every_valid_id(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", "C99")

    assert (code, out) == (1, "")
    assert "unknown rule id 'C99'" in err
    listed = err.split("valid ids:")[1]
    assert [r.strip() for r in listed.split(",")] == [r.value for r in Rule]
    assert "Traceback" not in err


def test_explain_without_an_id_or_all_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "explain")
    assert code == 1 and "--all" in err


def test_explain_all_text_has_every_rule_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--all")
    heads = re.findall(r"^([CWKB]\d+)  ", out, flags=re.M)
    assert code == 0 and heads == [r.value for r in Rule]


def test_every_rule_id_has_reference_text() -> None:
    assert set(RULES) == set(Rule)
    for info in RULES.values():
        assert info.title and info.azure and info.cmkctl and info.sources, info.id


def test_docs_rules_md_is_the_generated_reference(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/rules.md and the package data agree (regenerate: cmkctl explain --all --format markdown)."""
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    start, end = text.index(BEGIN_MARK), text.index(END_MARK) + len(END_MARK)
    assert text[start:end] + "\n" == rules_markdown()
    code, out, _ = run(capsys, "explain", "--all", "--format", "markdown")
    assert code == 0 and out == rules_markdown()


@pytest.mark.parametrize("rule", list(Rule), ids=str)
def test_enforced_in_names_files_that_cite_the_rule(rule: Rule) -> None:
    """Where the reference says a rule is enforced, the code says so too (`rule C4`, `(C4)`, ...)."""
    cite = re.compile(rf"(?<![A-Za-z0-9]){rule.value}(?![0-9])")
    for path in RULES[rule].enforced_in:
        source = ROOT / path
        assert source.is_file(), f"{rule}: {path} does not exist"
        assert cite.search(source.read_text(encoding="utf-8")), f"{rule}: {path} does not cite it"


def _repository_text() -> list[tuple[Path, str]]:
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    for top in CITING:
        files += [p for p in (ROOT / top).rglob("*") if p.suffix in (".py", ".md", ".yaml", ".yml", ".txt")]
    return [(p, p.read_text(encoding="utf-8")) for p in files if p.is_file()]


def test_every_docs_citation_resolves() -> None:
    missing = {
        f"{path.relative_to(ROOT)}: {m.group(0)}"
        for path, text in _repository_text()
        for m in re.finditer(r"docs/[\w.-]+\.md", text)
        if not (ROOT / m.group(0)).is_file()
    }
    assert not missing


def _wire_sections() -> set[str]:
    """'1', '1.3', '12.10', ...: the numbered headings of docs/azure-wire.md and the items of §12."""
    text = (DOCS / "azure-wire.md").read_text(encoding="utf-8")
    found = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.M))
    surprises = text.split("## 12.")[1].split("\n## ")[0]
    found |= {f"12.{n}" for n in re.findall(r"^(\d+)\. ", surprises, flags=re.M)}
    return found


def test_every_wire_section_citation_resolves() -> None:
    """Code cites docs/azure-wire.md sections as `§2.5` or `facts §2.5`: each must exist."""
    sections = _wire_sections()
    assert {"1.3", "1.6", "1.7", "2.5", "9.1", "10", "12.10", "13"} <= sections
    cited = {
        f"{path.relative_to(ROOT)}: §{m.group(1)}"
        for path, text in _repository_text()
        if path.suffix == ".py"
        for m in re.finditer(r"§(\d+(?:\.\d+)?)", text)
        if m.group(1) not in sections
    }
    assert not cited


def test_readme_links_both_references() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/rules.md)" in readme and "](docs/azure-wire.md)" in readme


def test_docs_limits_table_shows_todays_default_next_to_the_seed() -> None:
    """Rules C2, C3, C4 as a reader of docs/rules.md sees them: `current` is the default column."""
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    assert "| `current` (default: Azure today) | `seed` (2021 documentation) |" in text
    assert "| C2 | 5 active, 7 reserved (active or deleted in the last 14 days) | 2 active |" in text
    tiers = "100, 200, 300, 400, 500, 1000, 2000, 5000, 10000, 25000, 50000"
    assert f"| C3 | {tiers} | 1000 to 50000 in steps of 100 |" in text
    assert "| capacity decrease lock | C4 | 31 days | 30 days |" in text
