"""`cmkctl explain RULE`: what a rule id in a plan or an error means, without leaving the terminal."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from controller.errors import CmkError
from controller.model.rules import RULES, UnknownRule, lookup
from controller.render.rules import rule_markdown, rule_text, rules_markdown


class ExplainFormat(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"


class UnknownRuleError(CmkError):
    """An id that is not a rule: the message lists the valid ones (exit 1)."""


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)


def explain(
    rule: Annotated[str | None, typer.Argument(help="A rule id, e.g. C4 (see docs/rules.md)")] = None,
    all_rules: Annotated[bool, typer.Option("--all", help="Every rule, in order.")] = False,
    fmt: Annotated[ExplainFormat, typer.Option("--format", help="text or markdown")] = ExplainFormat.TEXT,
) -> None:
    """Explain a rule: what Azure does, the 2021 value where it differs, what cmkctl does, the source."""
    if all_rules == (rule is not None):
        raise UnknownRuleError("give one rule id (e.g. cmkctl explain C4) or --all")
    if all_rules:
        if fmt is ExplainFormat.MARKDOWN:
            typer.echo(rules_markdown(), nl=False)
        else:
            typer.echo("\n".join(rule_text(info) for info in RULES.values()), nl=False)
        return
    assert rule is not None  # noqa: S101 - narrowing for mypy
    try:
        info = lookup(rule)
    except UnknownRule as err:
        raise UnknownRuleError(str(err)) from None
    typer.echo(rule_markdown(info) if fmt is ExplainFormat.MARKDOWN else rule_text(info), nl=False)
