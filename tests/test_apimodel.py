"""The ECS model read without botocore (apimodel) is the model botocore itself uses, shape for shape."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest

from pytest_ecstask import apimodel
from pytest_ecstask.apimodel import ModelShape, ecs_model, ecs_model_file, operation_input


@pytest.fixture
def plain_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A home without AWS files and no AWS_* variables that change botocore's search; a fresh model cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("AWS_DATA_PATH", "AWS_CONFIG_FILE", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    ecs_model.cache_clear()
    yield home
    ecs_model.cache_clear()


def _pairs(ours: ModelShape, theirs: Any, seen: set[str]) -> Iterator[tuple[ModelShape, Any]]:
    if ours.name in seen:
        return
    seen.add(ours.name)
    yield ours, theirs
    kind = ours.type_name
    if kind == "structure":
        for name, member in ours.members.items():
            yield from _pairs(member, theirs.members[name], seen)
    elif kind == "list":
        yield from _pairs(ours.member, theirs.member, seen)
    elif kind == "map":
        yield from _pairs(ours.key, theirs.key, seen)
        yield from _pairs(ours.value, theirs.value, seen)


def test_every_shape_of_register_task_definition_reads_as_botocore_reads_it(plain_home: Path) -> None:
    ours = operation_input("RegisterTaskDefinition")
    theirs = botocore.session.get_session().get_service_model("ecs").operation_model("RegisterTaskDefinition")
    assert ours is not None
    pairs = list(_pairs(ours, theirs.input_shape, set()))
    assert len(pairs) > 40  # the walk went deep: containers, linuxParameters, volumes, ...
    for mine, botocores in pairs:
        where = mine.name
        assert (mine.name, mine.type_name) == (botocores.name, botocores.type_name), where
        assert mine.required_members == botocores.required_members, where
        for key in ("min", "max", "pattern"):
            assert mine.metadata.get(key) == botocores.metadata.get(key), (where, key)
        if mine.type_name == "structure":
            assert list(mine.members) == list(botocores.members), where
        if mine.type_name == "string":
            assert mine.enum == botocores.enum, where


def test_the_model_file_is_the_one_botocores_loader_reads(plain_home: Path) -> None:
    path = ecs_model_file()
    assert path is not None
    assert path.is_relative_to(Path(botocore.__file__).parent / "data" / "ecs")
    assert ecs_model() == botocore.session.get_session().get_service_data("ecs")


SMALL_MODEL = {
    "version": "2.0",
    "metadata": {"apiVersion": "2099-01-01", "protocol": "json", "serviceId": "ECS"},
    "operations": {"RegisterTaskDefinition": {"name": "RegisterTaskDefinition", "input": {"shape": "Request"}}},
    "shapes": {
        "Request": {"type": "structure", "required": ["family"], "members": {"family": {"shape": "String"}}},
        "String": {"type": "string"},
    },
}


@pytest.mark.parametrize("route", ["AWS_DATA_PATH", "data_path in the AWS config", "DATA_PATH in the AWS config"])
def test_a_data_path_given_to_botocore_gives_its_model(
    route: str, plain_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "models"
    (data / "ecs" / "2099-01-01").mkdir(parents=True)
    (data / "ecs" / "2099-01-01" / "service-2.json").write_text(json.dumps(SMALL_MODEL))
    if route == "AWS_DATA_PATH":
        monkeypatch.setenv("AWS_DATA_PATH", str(data))
    else:
        (plain_home / ".aws").mkdir()
        key = route.split()[0]
        (plain_home / ".aws" / "config").write_text(f"[default]\n{key} = {data}\n")
    assert ecs_model_file() is None
    assert botocore.session.get_session().get_service_data("ecs") == SMALL_MODEL  # what botocore reads
    assert ecs_model() == SMALL_MODEL
    shape = operation_input("RegisterTaskDefinition")
    assert shape is not None
    assert (list(shape.members), shape.required_members) == (["family"], ["family"])


@pytest.mark.parametrize("why", ["models in ~/.aws/models", "api_versions in the AWS config"])
def test_where_botocore_could_read_another_model_a_session_reads_it(
    why: str, plain_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if why == "models in ~/.aws/models":
        (plain_home / ".aws" / "models" / "ecs").mkdir(parents=True)
    else:
        (plain_home / ".aws").mkdir()
        (plain_home / ".aws" / "config").write_text("[default]\napi_versions =\n    ecs = 2014-11-13\n")
    assert ecs_model_file() is None
    assert ecs_model() == botocore.session.get_session().get_service_data("ecs")


def test_traits_on_a_reference_are_merged_over_its_shape() -> None:
    shapes: dict[str, Any] = {
        "Item": {"type": "structure", "members": {"tag": {"shape": "Text", "max": 3}}},
        "Text": {"type": "string", "min": 1, "max": 10},
    }
    tag = ModelShape("Item", shapes).members["tag"]
    assert (tag.name, tag.metadata.get("min"), tag.metadata.get("max")) == ("Text", 1, 3)
    assert shapes["Text"]["max"] == 10  # the model itself is left as it was


def _fake_botocore(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(apimodel, "_botocore_root", lambda: root)
    return root / "data" / "ecs"


def test_the_latest_version_with_a_model_is_taken_plain_json_first(
    plain_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _fake_botocore(tmp_path / "botocore", monkeypatch)
    for version, files in {
        "2014-11-13": ["service-2.json.gz"],
        "2015-01-01": ["service-2.json.gz", "service-2.json"],
        "2016-01-01": ["paginators-1.json"],  # no service model here: botocore passes it by
    }.items():
        (service / version).mkdir(parents=True)
        for name in files:
            (service / version / name).write_text("{}")
    assert ecs_model_file() == service / "2015-01-01" / "service-2.json"
    (service / "2015-01-01" / "service-2.json").unlink()
    assert ecs_model_file() == service / "2015-01-01" / "service-2.json.gz"
    (service / "2015-01-01" / "service-2.sdk-extras.json").write_text("{}")
    assert ecs_model_file() is None  # botocore would merge it in: its loader does that


def test_a_gzipped_model_is_read(plain_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip

    service = _fake_botocore(tmp_path / "botocore", monkeypatch)
    (service / "2014-11-13").mkdir(parents=True)
    model = {"operations": {"Op": {"input": {"shape": "In"}}}, "shapes": {"In": {"type": "structure"}}}
    with gzip.open(service / "2014-11-13" / "service-2.json.gz", "wt") as f:
        json.dump(model, f)
    shape = operation_input("Op")
    assert shape is not None
    assert (shape.name, shape.type_name, shape.members) == ("In", "structure", {})
    assert operation_input("Missing") is None


@pytest.mark.parametrize("damage", ["not JSON", "a truncated gzip file"])
def test_a_model_file_that_cannot_be_read_is_left_to_botocore(
    damage: str, plain_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _fake_botocore(tmp_path / "botocore", monkeypatch)
    (service / "2014-11-13").mkdir(parents=True)
    if damage == "not JSON":
        (service / "2014-11-13" / "service-2.json").write_text("{ half a model")
    else:
        (service / "2014-11-13" / "service-2.json.gz").write_bytes(b"\x1f\x8b\x08\x00")
    assert ecs_model_file() is not None
    assert ecs_model() == botocore.session.get_session().get_service_data("ecs")  # what botocore reads


def test_checking_a_task_definition_does_not_import_botocore(tmp_path: Path) -> None:
    # botocore's import is what the model file saves a run at its start (about 0.15 s).
    code = textwrap.dedent(
        """
        import sys
        from pytest_ecstask.taskdef import parse_task_definition
        td = parse_task_definition(
            {"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "memory": 64}]}, "td.json"
        )
        assert td.family == "f"
        print(sorted(m for m in sys.modules if m.split(".")[0] == "botocore"))
        """
    )
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
