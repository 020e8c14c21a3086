"""python -m pytest_ecstask.fields, used the wrong way: it says how to use it. Pure."""

from __future__ import annotations

import pytest

from pytest_ecstask.fields import main


def test_the_table_command_says_how_to_use_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--wrong"]) == 2
    assert capsys.readouterr() == ("", "usage: python -m pytest_ecstask.fields [--write DOCUMENT.md]\n")
