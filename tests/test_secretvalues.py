"""secretvalues: secrets and environment files the way ECS resolves them. Pure: no Docker, milliseconds.

The AWS resolver runs against real boto3 clients with botocore's Stubber: no network, no credentials.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_ecstask.errors import MAX_PROBLEMS_SHOWN, EcsTaskError
from pytest_ecstask.secretvalues import (
    SecretReference,
    UnresolvedSecretsError,
    aws_resolver,
    load_secrets_file,
    local_resolver,
    merge_environment,
    parse_environment_file,
    parse_value_from,
    resolve_secrets,
)
from pytest_ecstask.taskdef import TaskDefinition, parse_task_definition

SM = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"
SSM_ARN = "arn:aws:ssm:eu-west-1:123456789012:parameter/app/db"
VERSION_ID = "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1"
DB_JSON = json.dumps({"username": "admin", "password": "pa55-w0rd", "port": 5432, "tls": True})


# --- valueFrom ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value_from", "expected"),
    [
        ("DB_HOST", SecretReference("DB_HOST", "ssm", "DB_HOST")),
        ("/app/db", SecretReference("/app/db", "ssm", "/app/db")),
        (SSM_ARN, SecretReference(SSM_ARN, "ssm", SSM_ARN)),
        (SM, SecretReference(SM, "secretsmanager", SM)),
        (f"{SM}:password::", SecretReference(f"{SM}:password::", "secretsmanager", SM, json_key="password")),
        (
            f"{SM}::AWSPREVIOUS:",
            SecretReference(f"{SM}::AWSPREVIOUS:", "secretsmanager", SM, version_stage="AWSPREVIOUS"),
        ),
        (
            f"{SM}:::{VERSION_ID}",
            SecretReference(f"{SM}:::{VERSION_ID}", "secretsmanager", SM, version_id=VERSION_ID),
        ),
        (
            f"{SM}:password:AWSPREVIOUS:{VERSION_ID}",
            SecretReference(
                f"{SM}:password:AWSPREVIOUS:{VERSION_ID}",
                "secretsmanager",
                SM,
                "password",
                "AWSPREVIOUS",
                VERSION_ID,
            ),
        ),
        (f"{SM}:::", SecretReference(f"{SM}:::", "secretsmanager", SM)),
    ],
    ids=[
        "ssm-name",
        "ssm-path",
        "ssm-arn",
        "sm-plain",
        "sm-json-key",
        "sm-stage",
        "sm-id",
        "sm-all",
        "sm-empty",
    ],
)
def test_value_from_is_parsed_as_ecs_parses_it(value_from: str, expected: SecretReference) -> None:
    assert parse_value_from(value_from) == expected


@pytest.mark.parametrize(
    ("value_from", "region"),
    [("DB_HOST", None), (SSM_ARN, "eu-west-1"), (f"{SM}:password::", "us-east-1")],
)
def test_a_reference_knows_the_region_its_arn_names(value_from: str, region: str | None) -> None:
    assert parse_value_from(value_from).region == region


@pytest.mark.parametrize(
    ("value_from", "says"),
    [
        (f"{SM}:password", "':json-key:version-stage:version-id' with all three colons"),
        (f"{SM}:password:AWSCURRENT", "':json-key:version-stage:version-id' with all three colons"),
        (f"{SM}:password:AWSCURRENT:{VERSION_ID}:extra", "':json-key:version-stage:version-id'"),
        ("arn:aws:secretsmanager:us-east-1:123456789012:prod/db", "not of a secret"),
        ("arn:aws:ssm:eu-west-1:123456789012:document/x", "not of a parameter"),
        ("arn:aws:s3:::bucket/key", "ECS reads secrets only from SSM Parameter Store"),
        ("arn:aws:ssm", "is not a valid ARN"),
        ("", "valueFrom is empty"),
    ],
)
def test_a_malformed_value_from_is_refused_naming_it(value_from: str, says: str) -> None:
    with pytest.raises(EcsTaskError) as caught:
        parse_value_from(value_from)
    assert says in str(caught.value)
    assert repr(value_from) in str(caught.value) or not value_from


# --- local values -------------------------------------------------------------------------------------------


def ref(value_from: str) -> SecretReference:
    return parse_value_from(value_from)


def test_local_lookup_by_full_value_from_first() -> None:
    resolve = local_resolver({SM: DB_JSON, f"{SM}:password::": "from-the-suffixed-key"})
    assert resolve(ref(f"{SM}:password::")) == "from-the-suffixed-key"


def test_local_lookup_by_secret_id_then_json_key() -> None:
    resolve = local_resolver({SM: DB_JSON})
    assert resolve(ref(SM)) == DB_JSON
    assert resolve(ref(f"{SM}:username::")) == "admin"
    assert resolve(ref(f"{SM}:port::")) == "5432"  # non-string fields as their JSON text
    assert resolve(ref(f"{SM}:tls::")) == "true"


def test_json_key_keeps_numbers_as_written_and_nested_values_as_json() -> None:
    resolve = local_resolver({SM: '{"big": 12345678901234567890, "ratio": 1.50, "nested": {"a": [1]}}'})
    assert resolve(ref(f"{SM}:big::")) == "12345678901234567890"
    assert resolve(ref(f"{SM}:ratio::")) == "1.50"
    assert json.loads(resolve(ref(f"{SM}:nested::")) or "") == {"a": [1]}


def test_versions_are_ignored_locally_unless_a_key_names_them() -> None:
    resolve = local_resolver({SM: DB_JSON, f"{SM}::AWSPREVIOUS:": "previous-whole-secret"})
    assert resolve(ref(f"{SM}::AWSPREVIOUS:")) == "previous-whole-secret"
    assert resolve(ref(f"{SM}::AWSPENDING:")) == DB_JSON
    assert resolve(ref(f"{SM}:password:AWSPENDING:{VERSION_ID}")) == "pa55-w0rd"


def test_a_json_key_entry_without_version_serves_a_versioned_reference() -> None:
    resolve = local_resolver({f"{SM}:password::": "the-password"})
    assert resolve(ref(f"{SM}:password:AWSPREVIOUS:")) == "the-password"


def test_a_missing_json_key_names_the_reference_and_never_the_value() -> None:
    resolve = local_resolver({SM: DB_JSON})
    with pytest.raises(EcsTaskError) as caught:
        resolve(ref(f"{SM}:api_key::"))
    message = str(caught.value)
    assert f"{SM}:api_key::" in message and "'api_key'" in message
    for leaked in ("pa55-w0rd", "admin", "5432"):
        assert leaked not in message


def test_a_json_key_of_a_secret_that_is_not_a_json_object_is_an_error() -> None:
    resolve = local_resolver({SM: "plain-s3cret", "arn:aws:secretsmanager:us-east-1:1:secret:list-AbCdEf": "[1]"})
    with pytest.raises(EcsTaskError, match="is not a JSON object") as caught:
        resolve(ref(f"{SM}:password::"))
    assert "plain-s3cret" not in str(caught.value)
    with pytest.raises(EcsTaskError, match="is not a JSON object"):
        resolve(ref("arn:aws:secretsmanager:us-east-1:1:secret:list-AbCdEf:0::"))


@pytest.mark.parametrize(
    ("key", "value_from"),
    [
        ("/app/db", SSM_ARN),  # an ARN finds the parameter by name
        (SSM_ARN, "/app/db"),  # a name finds the parameter by ARN
        (SSM_ARN, "app/db"),
        ("app/db", "/app/db"),
        ("/app/db", "app/db"),
        ("DB_HOST", "arn:aws:ssm:eu-west-1:123456789012:parameter/DB_HOST"),
    ],
)
def test_ssm_names_and_arns_stand_for_each_other(key: str, value_from: str) -> None:
    assert local_resolver({key: "v"})(ref(value_from)) == "v"


def test_two_different_ssm_arns_do_not_match() -> None:
    other_account = "arn:aws:ssm:eu-west-1:999999999999:parameter/app/db"
    assert local_resolver({other_account: "v"})(ref(SSM_ARN)) is None


def test_an_unknown_reference_is_not_answered() -> None:
    resolve = local_resolver({"/app/db": "v", SM: DB_JSON})
    assert resolve(ref("/app/other")) is None
    assert resolve(ref("arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf")) is None
    assert resolve(ref("db")) is None  # an SSM name is not a Secrets Manager secret's name


def test_secrets_file_json(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(
        json.dumps({"/app/db": "pw", SM: {"username": "admin", "port": 5432}, "COUNT": 3, f"{SM}:tls::": True})
    )
    values = load_secrets_file(path)
    assert values["/app/db"] == "pw"
    assert json.loads(values[SM]) == {"username": "admin", "port": 5432}  # an object is the secret's JSON
    assert values["COUNT"] == "3"
    assert values[f"{SM}:tls::"] == "true"
    assert local_resolver(values)(ref(f"{SM}:username::")) == "admin"


def test_secrets_file_yaml(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "secrets.yaml"
    path.write_text(f"/app/db: pw\n'{SM}':\n  username: admin\n  port: 5432\n")
    values = load_secrets_file(path)
    assert values["/app/db"] == "pw"
    assert local_resolver(values)(ref(f"{SM}:port::")) == "5432"


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("s.json", '{"/app/db": "hunter2",}', "invalid JSON in the secrets file"),
        ("s.json", '["hunter2"]', "the secrets file holds a list"),
        ("s.json", '{"/app/db": null}', "secret '/app/db' has no usable value"),
        ("s.json", '{"' + SM + ':password": "hunter2"}', "all three colons"),
        ("s.yaml", "/app/db: hunter2: x\n", "invalid YAML"),
    ],
)
def test_a_bad_secrets_file_names_the_file_never_a_value(tmp_path: Path, name: str, content: str, says: str) -> None:
    if name.endswith(".yaml"):
        pytest.importorskip("yaml")
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(EcsTaskError) as caught:
        load_secrets_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert says in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_yaml_secrets_key_that_is_not_a_string_is_named_never_its_value(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "secrets.yaml"
    path.write_text("/app/db: pw\n2024: hunter2\n")
    with pytest.raises(EcsTaskError) as caught:
        load_secrets_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and message.endswith(" in the secrets file is not a string; quote it")
    assert "hunter2" not in message


def test_a_missing_secrets_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EcsTaskError, match=re.escape(f"{tmp_path / 'none.json'}: secrets file not found")):
        load_secrets_file(tmp_path / "none.json")


# --- real AWS, stubbed --------------------------------------------------------------------------------------


@pytest.fixture
def aws() -> Any:
    """Real boto3 clients with Stubbers; no request leaves the process."""
    boto3 = pytest.importorskip("boto3")
    from botocore.stub import Stubber

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    )
    clients = {name: session.client(name, region_name="eu-west-1") for name in ("ssm", "secretsmanager")}
    stubs = {name: Stubber(client) for name, client in clients.items()}
    for stub in stubs.values():
        stub.activate()
    yield clients, stubs
    for stub in stubs.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def _parameter(name: str, value: str) -> dict[str, Any]:
    return {"Parameter": {"Name": name, "Type": "SecureString", "Value": value, "Version": 1}}


def _secret(secret_string: str) -> dict[str, Any]:
    return {"ARN": SM, "Name": "prod/db", "VersionId": VERSION_ID, "SecretString": secret_string}


def test_aws_ssm_parameter_is_read_with_decryption(aws: Any) -> None:
    clients, stubs = aws
    stubs["ssm"].add_response("get_parameter", _parameter("/app/db", "pw"), {"Name": "/app/db", "WithDecryption": True})
    stubs["ssm"].add_response("get_parameter", _parameter("/app/db", "pw2"), {"Name": SSM_ARN, "WithDecryption": True})
    resolve = aws_resolver("eu-west-1", session=clients)
    assert resolve(ref("/app/db")) == "pw"
    assert resolve(ref(SSM_ARN)) == "pw2"  # an ARN is passed as the Name


def test_aws_secret_plain_passes_only_the_secret_id(aws: Any) -> None:
    clients, stubs = aws
    stubs["secretsmanager"].add_response("get_secret_value", _secret("whole"), {"SecretId": SM})
    assert aws_resolver("eu-west-1", session=clients)(ref(SM)) == "whole"


def test_aws_secret_with_version_stage_and_json_key(aws: Any) -> None:
    clients, stubs = aws
    stubs["secretsmanager"].add_response(
        "get_secret_value", _secret(DB_JSON), {"SecretId": SM, "VersionStage": "AWSPREVIOUS"}
    )
    assert aws_resolver("eu-west-1", session=clients)(ref(f"{SM}:password:AWSPREVIOUS:")) == "pa55-w0rd"


def test_aws_secret_with_version_id(aws: Any) -> None:
    clients, stubs = aws
    stubs["secretsmanager"].add_response("get_secret_value", _secret("v1"), {"SecretId": SM, "VersionId": VERSION_ID})
    assert aws_resolver("eu-west-1", session=clients)(ref(f"{SM}:::{VERSION_ID}")) == "v1"


def test_aws_secret_with_all_three(aws: Any) -> None:
    clients, stubs = aws
    stubs["secretsmanager"].add_response(
        "get_secret_value",
        _secret(DB_JSON),
        {"SecretId": SM, "VersionStage": "AWSCURRENT", "VersionId": VERSION_ID},
    )
    assert aws_resolver("eu-west-1", session=clients)(ref(f"{SM}:username:AWSCURRENT:{VERSION_ID}")) == "admin"


def test_aws_error_names_the_reference_and_the_code(aws: Any) -> None:
    clients, stubs = aws
    stubs["secretsmanager"].add_client_error(
        "get_secret_value",
        service_error_code="ResourceNotFoundException",
        service_message="Secrets Manager can't find the specified secret.",
        expected_params={"SecretId": SM},
    )
    with pytest.raises(EcsTaskError) as caught:
        aws_resolver("eu-west-1", session=clients)(ref(f"{SM}:password::"))
    assert f"{SM}:password::" in str(caught.value)
    assert "ResourceNotFoundException" in str(caught.value)


def test_aws_missing_json_key_never_shows_the_secret(aws: Any) -> None:
    clients, stubs = aws
    stubs["secretsmanager"].add_response("get_secret_value", _secret(DB_JSON), {"SecretId": SM})
    with pytest.raises(EcsTaskError) as caught:
        aws_resolver("eu-west-1", session=clients)(ref(f"{SM}:nope::"))
    assert "pa55-w0rd" not in str(caught.value) and "'nope'" in str(caught.value)


def test_aws_binary_secret_is_refused(aws: Any) -> None:
    clients, stubs = aws
    stubs["secretsmanager"].add_response(
        "get_secret_value", {"ARN": SM, "Name": "prod/db", "SecretBinary": b"\x00\x01"}, {"SecretId": SM}
    )
    with pytest.raises(EcsTaskError, match="SecretBinary"):
        aws_resolver("eu-west-1", session=clients)(ref(SM))


def test_aws_reads_from_the_region_an_arn_names(aws: Any) -> None:
    clients, stubs = aws
    asked: list[tuple[str, str | None]] = []

    class Session:
        def client(self, service: str, region_name: str | None = None) -> Any:
            asked.append((service, region_name))
            return clients[service]

    stubs["secretsmanager"].add_response("get_secret_value", _secret("x"), {"SecretId": SM})
    stubs["ssm"].add_response("get_parameter", _parameter("p", "y"), {"Name": "p", "WithDecryption": True})
    resolve = aws_resolver("eu-west-1", session=Session())
    resolve(ref(SM))
    resolve(ref("p"))
    assert asked == [("secretsmanager", "us-east-1"), ("ssm", "eu-west-1")]


def test_without_boto3_the_aws_resolver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes `import boto3` fail as if it were not installed
    with pytest.raises(EcsTaskError) as caught:
        aws_resolver("eu-west-1")
    assert str(caught.value) == "reading secrets from AWS needs boto3: pip install boto3"


# --- a task definition's secrets ----------------------------------------------------------------------------

TASK = {
    "family": "shop",
    "containerDefinitions": [
        {
            "name": "app",
            "image": "busybox:1",
            "secrets": [
                {"name": "DB_PASSWORD", "valueFrom": f"{SM}:password::"},
                {"name": "API_KEY", "valueFrom": "/shop/api-key"},
            ],
            "logConfiguration": {
                "logDriver": "splunk",
                "options": {"splunk-url": "https://splunk:8088"},
                "secretOptions": [{"name": "splunk-token", "valueFrom": "/shop/splunk-token"}],
            },
        },
        {
            "name": "worker",
            "image": "busybox:1",
            "essential": False,
            "secrets": [
                {"name": "DB_PASSWORD", "valueFrom": f"{SM}:password::"},
                {"name": "QUEUE_URL", "valueFrom": SSM_ARN},
            ],
        },
        {"name": "plain", "image": "busybox:1", "essential": False},
    ],
}


@pytest.fixture
def task() -> TaskDefinition:
    return parse_task_definition(TASK, "shop.json")


def test_every_secret_and_log_secret_option_is_resolved(task: TaskDefinition) -> None:
    resolve = local_resolver({SM: DB_JSON, "/shop/api-key": "k", "shop/splunk-token": "t", "/app/db": "q"})
    assert resolve_secrets(task, [resolve]) == {
        f"{SM}:password::": "pa55-w0rd",
        "/shop/api-key": "k",
        "/shop/splunk-token": "t",
        SSM_ARN: "q",
    }


def test_the_first_resolver_that_answers_wins_and_each_value_from_is_asked_once(task: TaskDefinition) -> None:
    asked: list[str] = []

    def hook(reference: SecretReference) -> str | None:
        asked.append(reference.value_from)
        return "from-hook" if reference.service == "ssm" else None

    values = resolve_secrets(task, [hook, local_resolver({SM: DB_JSON, "/shop/api-key": "from-file"})])
    assert values["/shop/api-key"] == "from-hook"
    assert values[f"{SM}:password::"] == "pa55-w0rd"
    assert sorted(asked) == sorted([f"{SM}:password::", "/shop/api-key", "/shop/splunk-token", SSM_ARN])


def test_every_unresolved_secret_is_listed_in_one_error_without_any_value(task: TaskDefinition) -> None:
    resolve = local_resolver({"/shop/api-key": "v4lue-that-must-not-leak"})

    with pytest.raises(UnresolvedSecretsError) as caught:
        resolve_secrets(task, [resolve])

    assert caught.value.problems == [
        f"container 'app': secret 'DB_PASSWORD' (valueFrom '{SM}:password::') could not be resolved",
        "container 'app': logConfiguration secret option 'splunk-token' (valueFrom '/shop/splunk-token') "
        "could not be resolved",
        f"container 'worker': secret 'DB_PASSWORD' (valueFrom '{SM}:password::') could not be resolved",
        f"container 'worker': secret 'QUEUE_URL' (valueFrom '{SSM_ARN}') could not be resolved",
    ]
    assert caught.value.source == "shop.json"
    message = str(caught.value)
    assert message.startswith("shop.json: 4 secrets could not be resolved:\n  - container 'app'")
    assert message.splitlines()[-1] == (
        "give values with a secrets file (--ecs-secrets-file or ini ecs_secrets_file), a "
        "pytest_ecstask_resolve_secret hook, or --ecs-aws to read them from AWS"
    )
    assert "v4lue-that-must-not-leak" not in message
    assert isinstance(caught.value, EcsTaskError)


@pytest.mark.parametrize("count", [1, MAX_PROBLEMS_SHOWN + 10])
def test_one_unresolved_secret_is_counted_and_many_are_all_listed(count: int) -> None:
    # Unlike a task definition's problems, unresolved secrets are never cut short: each is a value to give.
    secrets = [{"name": f"S{i}", "valueFrom": f"/shop/s{i}"} for i in range(count)]
    many = parse_task_definition(
        {"family": "f", "containerDefinitions": [{"name": "app", "image": "app:1", "secrets": secrets}]}, "f.json"
    )
    with pytest.raises(UnresolvedSecretsError) as caught:
        resolve_secrets(many, [])
    lines = str(caught.value).splitlines()
    assert lines[0] == f"f.json: {count} secret{'s' if count > 1 else ''} could not be resolved:"
    assert lines[1] == "  - container 'app': secret 'S0' (valueFrom '/shop/s0') could not be resolved"
    assert lines[1:-1] == [f"  - {p}" for p in caught.value.problems] and len(lines) == count + 2
    assert lines[-1].startswith("give values with a secrets file")


def test_a_resolver_error_is_collected_with_its_container_not_raised_at_once(task: TaskDefinition) -> None:
    fallback_asked: list[str] = []

    def fallback(reference: SecretReference) -> str | None:
        fallback_asked.append(reference.value_from)
        return "from-fallback"

    # The local file knows the secret but lacks the key: that is an answer (an error), not a pass.
    local = local_resolver({SM: json.dumps({"user": "pa55-w0rd"})})

    with pytest.raises(UnresolvedSecretsError) as caught:
        resolve_secrets(task, [local, fallback])

    problems = caught.value.problems
    assert len(problems) == 2
    assert problems[0].startswith(f"container 'app': secret 'DB_PASSWORD' (valueFrom '{SM}:password::'): ")
    assert problems[1].startswith(f"container 'worker': secret 'DB_PASSWORD' (valueFrom '{SM}:password::'): ")
    assert "has no json key 'password'" in problems[0]
    assert "pa55-w0rd" not in str(caught.value)
    assert f"{SM}:password::" not in fallback_asked
    assert "/shop/api-key" in fallback_asked  # the other secrets were still resolved


def test_a_malformed_value_from_in_the_task_definition_is_collected(task: TaskDefinition) -> None:
    data = json.loads(json.dumps(TASK))
    data["containerDefinitions"][1]["secrets"][1]["valueFrom"] = f"{SM}:password"
    broken = parse_task_definition(data, "shop.json")
    with pytest.raises(UnresolvedSecretsError) as caught:
        resolve_secrets(broken, [lambda reference: "x"])
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"container 'worker': secret 'QUEUE_URL' (valueFrom '{SM}:password'):")
    assert "all three colons" in caught.value.problems[0]


def test_a_task_without_secrets_needs_no_resolver() -> None:
    plain = parse_task_definition({"family": "f", "containerDefinitions": [{"name": "a", "image": "i"}]}, "f")
    assert resolve_secrets(plain, []) == {}


# --- environment files --------------------------------------------------------------------------------------


def test_environment_file_lines_are_taken_as_the_agent_takes_them() -> None:
    text = (
        "# a comment\n"
        "A=1\n"
        "\n"
        "no equals sign\n"
        "URL=http://x/?a=b=c\n"
        'QUOTED="kept"\n'
        " SPACED = both sides \n"
        "export EXPORTED=1\n"
        "  # indented hash=not a comment\n"
        "EMPTY=\n"
        "=no-name\n"
        "CRLF=yes\r\n"
        "A=2\n"
        "LAST=no newline"
    )
    assert parse_environment_file(text, "app.env") == [
        ("A", "1"),
        ("URL", "http://x/?a=b=c"),
        ("QUOTED", '"kept"'),
        (" SPACED ", " both sides "),
        ("export EXPORTED", "1"),
        ("  # indented hash", "not a comment"),
        ("CRLF", "yes"),
        ("A", "2"),
        ("LAST", "no newline"),
    ]


def test_environment_file_edge_cases_are_taken_as_the_agent_takes_them() -> None:
    text = "#X=1\nEMPTY=\"\"\nMIXED=\"it's'\nHALF='open\n"
    assert parse_environment_file(text, "app.env") == [
        ("EMPTY", '""'),  # quotes are never removed: the value is two quote characters
        ("MIXED", "\"it's'"),
        ("HALF", "'open"),
    ]


def test_an_empty_environment_file_has_nothing() -> None:
    assert parse_environment_file("", "e.env") == []
    assert parse_environment_file("# only\n\n", "e.env") == []


def test_an_environment_file_line_of_64_kib_fails_like_the_agent() -> None:
    fine = "A=" + "x" * (64 * 1024 - 3)
    assert parse_environment_file(fine + "\n", "e.env") == [("A", "x" * (64 * 1024 - 3))]
    with pytest.raises(EcsTaskError, match=r"e\.env: line 2 is 64 KiB or longer"):
        parse_environment_file("B=1\n" + fine + "x\n", "e.env")


def test_environment_beats_files_and_the_first_file_wins() -> None:
    environment = [{"name": "A", "value": "env"}, {"name": "NOVALUE"}]
    first = [("A", "first"), ("B", "first"), ("C", "first-1"), ("C", "first-2")]
    second = [("A", "second"), ("B", "second"), ("C", "second"), ("D", "second")]
    assert merge_environment(environment, [first, second]) == {
        "A": "env",
        "NOVALUE": "",
        "B": "first",
        "C": "first-2",  # within one file the last line wins, as the agent reads a file into a map
        "D": "second",
    }


def test_merge_with_files_only_and_environment_only() -> None:
    assert merge_environment([], [[("X", "1")]]) == {"X": "1"}
    assert merge_environment([{"name": "X", "value": "1"}], []) == {"X": "1"}
