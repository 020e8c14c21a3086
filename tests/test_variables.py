"""variables: filling ${name} placeholders of task definition templates. Pure: no Docker, milliseconds."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from pytest_ecstask.errors import EcsTaskError, TaskDefinitionError
from pytest_ecstask.taskdef import parse_task_definition_text
from pytest_ecstask.variables import (
    load_vars_file,
    parse_var_assignments,
    placeholder_names,
    substitute,
    template_values,
)

TASKDEFS = Path(__file__).resolve().parents[1].parent / "shared" / "taskdefs"

# Terraform style: numbers unquoted, so the file is not JSON until it is rendered.
TEMPLATE = """\
{
  "family": "web",
  "containerDefinitions": [
    {
      "name": "app",
      "image": "${image}",
      "memory": ${mem},
      "essential": ${essential},
      "portMappings": [{"containerPort": ${app_port}, "hostPort": ${app_port}}],
      "environment": [{"name": "GREETING", "value": "${greeting}"}]
    }
  ]
}
"""
VALUES = {"image": "busybox:1", "mem": "256", "essential": "true", "app_port": "8080", "greeting": "hi"}


# --- substitute ---------------------------------------------------------------------------------------------


def test_unquoted_numeric_placeholders_render_to_a_task_definition_that_loads() -> None:
    task = parse_task_definition_text(substitute(TEMPLATE, VALUES, "t.json"), "t.json")

    app = task.container("app")
    assert app.image == "busybox:1"
    assert app.raw["memory"] == 256
    assert app.raw["essential"] is True
    assert app.raw["portMappings"] == [{"containerPort": 8080, "hostPort": 8080}]
    assert app.raw["environment"] == [{"name": "GREETING", "value": "hi"}]


def test_the_unrendered_template_is_not_json() -> None:
    # The reason substitution happens on the raw text: the template cannot be parsed first.
    with pytest.raises(json.JSONDecodeError):
        json.loads(TEMPLATE)


def test_values_are_inserted_verbatim_so_the_template_decides_quoting() -> None:
    text = substitute('{"a": ${x}, "b": "${x}", "c": "${y}"}', {"x": "[1, 2]", "y": r"C:\new \1 $"}, "s")
    # A regex replacement string would have read `\1` and `\n`; a value is never interpreted.
    assert text == '{"a": [1, 2], "b": "[1, 2]", "c": "C:\\new \\1 $"}'


def test_every_missing_name_is_listed_at_once_with_its_lines_in_order_of_appearance() -> None:
    template = (TASKDEFS / "24_tf-tpl-repository-credentials-unquoted.json").read_text()

    with pytest.raises(TaskDefinitionError) as caught:
        substitute(template, {"fargate_cpu": "256"}, "24.json")

    assert caught.value.source == "24.json"
    assert caught.value.problems == [
        "line 4: template variable ${app_image} has no value; give it with --ecs-var app_image=VALUE, "
        "a vars file (ecs_vars_file), or the environment",
        "line 6: template variable ${fargate_memory} has no value; give it with --ecs-var "
        "fargate_memory=VALUE, a vars file (ecs_vars_file), or the environment",
        "line 15: template variable ${aws_region} has no value; give it with --ecs-var aws_region=VALUE, "
        "a vars file (ecs_vars_file), or the environment",
        "line 21, 22: template variable ${app_port} has no value; give it with --ecs-var app_port=VALUE, "
        "a vars file (ecs_vars_file), or the environment",
    ]


def test_a_real_terraform_template_renders_to_json_leaving_only_its_real_mistake() -> None:
    template = (TASKDEFS / "24_tf-tpl-repository-credentials-unquoted.json").read_text()
    values = {
        "app_image": "nginx:1",
        "fargate_cpu": "256",
        "fargate_memory": "512",
        "aws_region": "eu-west-1",
        "app_port": "80",
    }

    rendered = substitute(template, values, "24.json")

    container = json.loads(rendered)[0]
    assert (container["image"], container["cpu"], container["memory"]) == ("nginx:1", 256, 512)
    assert container["portMappings"] == [{"containerPort": 80, "hostPort": 80}]
    # The file really puts networkMode inside the container; that, and nothing about templates, remains.
    with pytest.raises(TaskDefinitionError) as caught:
        parse_task_definition_text(rendered, "24.json")
    assert len(caught.value.problems) == 1
    assert "unknown key 'networkMode' in a container definition" in caught.value.problems[0]


def test_a_placeholder_used_twice_on_one_line_names_the_line_once() -> None:
    with pytest.raises(TaskDefinitionError) as caught:
        substitute('{\n"a": "${p}-${p}"}', {}, "s")
    assert caught.value.problems[0].startswith("line 2: template variable ${p} has no value")


def test_no_value_ever_appears_in_the_error() -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    with pytest.raises(TaskDefinitionError) as caught:
        substitute('{"a": "${given}", "b": "${missing}"}', {"given": secret}, "s")
    assert secret not in str(caught.value)
    assert "${missing}" in str(caught.value)
    assert "${given}" not in str(caught.value)


def test_double_dollar_escapes_a_literal_placeholder() -> None:
    text = substitute('{"command": "echo $${HOME} ${who} $${who}"}', {"who": "me"}, "s")
    assert text == '{"command": "echo ${HOME} me ${who}"}'


def test_an_escaped_placeholder_needs_no_value() -> None:
    assert substitute("$${nothing_here}", {}, "s") == "${nothing_here}"


def test_text_that_is_not_a_name_placeholder_is_left_alone() -> None:
    text = '{"a": "${1abc} ${a.b} ${ x } $plain {{ m }} $"}'
    assert substitute(text, {}, "s") == text


def test_placeholder_names_in_order_of_first_appearance_without_escapes() -> None:
    text = "${b} ${a} $${c} ${b} ${_d9} ${9e}"
    assert placeholder_names(text) == ["b", "a", "_d9"]


# --- where values come from ---------------------------------------------------------------------------------


def test_command_line_beats_vars_file_beats_environment() -> None:
    values = template_values(
        cli={"a": "cli"},
        file_values={"a": "file", "b": "file"},
        environ={"a": "env", "b": "env", "c": "env"},
        names=["a", "b", "c"],
    )
    assert values == {"a": "cli", "b": "file", "c": "env"}


def test_only_the_names_the_template_uses_are_taken() -> None:
    values = template_values({}, {"unused": "x"}, {"HOME": "/root", "PATH": "/bin", "port": "1"}, ["port", "gone"])
    assert values == {"port": "1"}


def test_an_empty_value_counts_as_given() -> None:
    assert template_values({"a": ""}, {"a": "file"}, {}, ["a"]) == {"a": ""}


def test_var_assignments_split_on_the_first_equals_and_the_last_wins() -> None:
    assert parse_var_assignments(["a=1", "url=http://x/?q=1", "a=2", "empty="], "--ecs-var") == {
        "a": "2",
        "url": "http://x/?q=1",
        "empty": "",
    }


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("novalue", "entry 2 of 2 has no '=': expected NAME=VALUE"),
        ("=value", "entry 2 of 2: the part before the first '=' is not a variable name"),
        ("9lives=1", "entry 2 of 2: the part before the first '=' is not a variable name"),
        ("has space=hunter2", "entry 2 of 2: the part before the first '=' is not a variable name"),
    ],
)
def test_a_bad_assignment_names_the_entry_and_where_it_came_from(entry: str, says: str) -> None:
    with pytest.raises(EcsTaskError) as caught:
        parse_var_assignments(["ok=1", entry], "--ecs-var")
    assert str(caught.value).startswith("--ecs-var: ")
    assert says in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert entry not in str(caught.value)  # the entry is never shown: it may hold a secret


# --- vars files ---------------------------------------------------------------------------------------------


def test_dotenv_vars_file(tmp_path: Path) -> None:
    path = tmp_path / "prod.env"
    path.write_text(
        "# comment\n"
        "\n"
        "image=busybox:1\n"
        "export region = eu-west-1\n"
        'quoted="a b"\n'
        "single='x=y'\n"
        "   indented=1   \n"
        'inner=say "hi"\n'
        "empty=\n"
        "crlf=yes\r\n"
    )
    assert load_vars_file(path) == {
        "image": "busybox:1",
        "region": "eu-west-1",
        "quoted": "a b",
        "single": "x=y",
        "indented": "1",
        "inner": 'say "hi"',
        "empty": "",
        "crlf": "yes",
    }


def test_dotenv_vars_file_edge_cases(tmp_path: Path) -> None:
    path = tmp_path / "edge.env"
    path.write_text(
        "#X=1\n"  # a comment, even though it looks like an assignment
        'EMPTY=""\n'
        "BLANK=''\n"
        "MIXED=\"it's'\n"  # the quotes differ: both kept
        "HALF='open\n"
        'ONE="\n'
        "SHORT=x\n"
    )
    assert load_vars_file(path) == {
        "EMPTY": "",
        "BLANK": "",
        "MIXED": "\"it's'",
        "HALF": "'open",
        "ONE": '"',
        "SHORT": "x",
    }


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("a=1\njust words\n", "line 2: expected NAME=VALUE"),
        ("a=1\n\n2bad=x\n", "line 3: the part before the first '=' is not a variable name"),
    ],
)
def test_a_bad_dotenv_line_names_the_file_and_line(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "bad.vars"
    path.write_text(content)
    with pytest.raises(EcsTaskError) as caught:
        load_vars_file(path)
    assert str(caught.value).startswith(f"{path}: {says}")


def test_json_vars_file_turns_numbers_and_booleans_into_their_json_text(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    path.write_text('{"mem": 512, "ratio": 0.5, "essential": true, "off": false, "image": "busybox:1"}')
    assert load_vars_file(path) == {
        "mem": "512",
        "ratio": "0.5",
        "essential": "true",
        "off": "false",
        "image": "busybox:1",
    }


def test_json_vars_render_an_unquoted_template(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    path.write_text(json.dumps({"image": "busybox:1", "mem": 256, "essential": True, "app_port": 80}))
    values = template_values({"greeting": "hello"}, load_vars_file(path), {}, placeholder_names(TEMPLATE))
    task = parse_task_definition_text(substitute(TEMPLATE, values, "t"), "t")
    assert task.container("app").raw["memory"] == 256


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"a": 1,}', "line 1, column 9: invalid JSON in the vars file"),
        ('["a", "b"]', "the vars file holds a list; expected a mapping"),
        ('{"a": {"b": 1}}', "variable 'a' has a nested value"),
        ('{"a": [1]}', "variable 'a' has a nested value"),
        ('{"a": null}', "variable 'a' has no usable value"),
        ('{"not a name": "x"}', "name 1 of 1 is not a variable name"),
    ],
)
def test_a_bad_json_vars_file_names_the_file(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "vars.json"
    path.write_text(content)
    with pytest.raises(EcsTaskError, match=re.escape(says)) as caught:
        load_vars_file(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_missing_vars_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.env"
    with pytest.raises(EcsTaskError) as caught:
        load_vars_file(path)
    assert str(caught.value) == f"{path}: vars file not found"


def test_yaml_vars_file(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "vars.yaml"
    path.write_text("image: busybox:1\nmem: 512\nessential: true\nquoted: '0755'\n")
    assert load_vars_file(path) == {"image": "busybox:1", "mem": "512", "essential": "true", "quoted": "0755"}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("a: [1, 2\n", "line 2, column 1: invalid YAML"),
        ("- a\n- b\n", "holds a list"),
        ("a:\n  b: 1\n", "variable 'a' has a nested value"),
        ("a:\n", "variable 'a' has no usable value"),
    ],
)
def test_a_bad_yaml_vars_file_names_the_file(tmp_path: Path, content: str, says: str) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "vars.yml"
    path.write_text(content)
    with pytest.raises(EcsTaskError, match=re.escape(says)) as caught:
        load_vars_file(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_yaml_key_that_is_not_a_string_is_named(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "vars.yaml"
    path.write_text("image: busybox:1\n8080: web\n")
    with pytest.raises(EcsTaskError) as caught:
        load_vars_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and message.endswith(" in the vars file is not a string; quote it")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (
            "a: [1, 2\n",
            "line 2, column 1: invalid YAML in the vars file: the structure is broken: check the "
            "indentation and the ':' after each name (the text is not shown)",
        ),
        (
            "a: *nope\n",
            "line 1, column 4: invalid YAML in the vars file: an alias (*name) with no anchor: quote "
            "values that start with * (the text is not shown)",
        ),
    ],
)
def test_a_yaml_error_is_told_by_its_kind(tmp_path: Path, content: str, says: str) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "vars.yaml"
    path.write_text(content)
    with pytest.raises(EcsTaskError) as caught:
        load_vars_file(path)
    assert str(caught.value) == f"{path}: {says}"


def test_an_empty_yaml_vars_file_has_no_values(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "vars.yaml"
    path.write_text("")
    assert load_vars_file(path) == {}


def test_a_vars_file_of_1_mib_is_read_and_a_larger_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.env"
    path.write_text("A=1\n" + "#" * (1_048_576 - 4))
    assert load_vars_file(path) == {"A": "1"}
    path.write_text("A=1\n" + "#" * (1_101_005 - 4))
    with pytest.raises(EcsTaskError) as caught:
        load_vars_file(path)
    assert str(caught.value) == f"{path}: the vars file is 1.1 MiB; this reads files up to 1 MiB"


def test_yaml_errors_do_not_quote_the_file(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "vars.yaml"
    path.write_text("token: hunter2: oops\n")
    with pytest.raises(EcsTaskError) as caught:
        load_vars_file(path)
    assert "hunter2" not in str(caught.value)


def test_without_pyyaml_a_yaml_vars_file_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail as if it were not installed
    path = tmp_path / "vars.yaml"
    path.write_text("a: 1\n")
    with pytest.raises(EcsTaskError) as caught:
        load_vars_file(path)
    assert str(caught.value) == f"{path}: reading YAML needs PyYAML: pip install pyyaml"
