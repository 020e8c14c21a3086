"""How to run a task: the settings a marker, the command line, an ini file or a caller give.

Kept apart and light on imports: the plugin checks these settings when pytest starts, also in runs that
never start a task, and that must cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_ecstask.secretvalues import SecretResolver

DEFAULT_CLUSTER = "pytest-ecstask"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_AVAILABILITY_ZONE = "us-east-1a"
DEFAULT_LAUNCH_TYPE = "EC2"
DEFAULT_RELAY_IMAGE = "python:3.13-alpine"  # any image with python3 3.8 or newer will do
MASK = "******"  # what a repr, a plan, a report or a log file shows for a secret value or a credential
ENDPOINT_MODES = ("auto", "local", "relay", "off")


def endpoint_mode(value: bool | str) -> str:
    """The endpoint mode a setting gives: True is auto, False is off (as ``endpoints=`` has always taken)."""
    if value is True:
        return "auto"
    if value is False:
        return "off"
    if value not in ENDPOINT_MODES:
        raise ValueError(f"endpoints: {value!r} is not one of {', '.join(ENDPOINT_MODES)}")
    return str(value)


ENDPOINT_SUBNET = "169.254.170.0/24"  # the endpoint network's: 169.254.170.2 is its gateway
# How a process finds its own AWS credentials or task metadata at a link-local address: CodeBuild and ECS
# tasks (169.254.170.2), EKS Pod Identity (169.254.170.23).
OWN_ENDPOINT_VARIABLES = (
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "ECS_CONTAINER_METADATA_URI_V4",
    "ECS_CONTAINER_METADATA_URI",
)


def own_endpoint_variable(environ: Mapping[str, str]) -> str | None:
    """The variable by which this process gets its own AWS credentials or metadata from an address of the
    endpoint subnet, if one does: the endpoint network would take that address from it. Read at a run's
    start (``Run.begin``); nothing is imported unless one of the variables is set."""
    given = [(name, environ[name].strip()) for name in OWN_ENDPOINT_VARIABLES if environ.get(name, "").strip()]
    if not given:
        return None
    import ipaddress
    from urllib.parse import urlsplit

    subnet = ipaddress.ip_network(ENDPOINT_SUBNET)
    for name, value in given:
        if name == "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI":
            return name  # a path on 169.254.170.2, as every SDK reads it
        try:
            if ipaddress.ip_address(urlsplit(value).hostname or "") in subnet:
                return name
        except ValueError:  # a host name, or no URL at all: not an address of the subnet
            continue
    return None


@dataclass(frozen=True)
class TaskOptions:
    """How to run a task: what ``create_task`` and ``run_task`` take.

    Under pytest the plugin fills it from its settings table (``pytest_ecstask.settings``): the values from
    the command line, the ini file and a marker or factory call, and the callables from its hooks. Which
    field can be given where is said there, once.
    """

    images: Mapping[str, str] = field(default_factory=dict)  # task definition image (or glob) -> local image
    pull: str = "missing"  # missing | always | never
    stop_timeout: float | None = None  # overrides every container's stopTimeout
    start_timeout: float | None = None  # for containers without startTimeout; None = no limit
    check: bool = True  # raise TaskFailedToStart when an essential container could not start
    # The metadata and credentials endpoints at 169.254.170.2: "auto" (or True), "local", "relay", "off" (or False).
    endpoints: bool | str = True
    endpoint_port: int = 0  # 80 for the exact ECS form (relative credentials URI); 0 = any free port
    relay_image: str = DEFAULT_RELAY_IMAGE  # the image of the engine's relay (any with python3)
    credentials: Mapping[str, str] | None = None  # task-role credentials; None = the provider, STS or made up
    # Asked with the taskRoleArn when ``credentials`` is None: the plugin's hook, fixture and ini key.
    credentials_provider: Callable[[str, str], Mapping[str, str] | None] | None = None
    assume_role: bool = False  # get task-role credentials from STS with the runner's own AWS credentials
    cluster: str = DEFAULT_CLUSTER
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    availability_zone: str = DEFAULT_AVAILABILITY_ZONE
    launch_type: str = DEFAULT_LAUNCH_TYPE
    # Readiness beyond ECS gating: testcontainers wait strategies by container name, applied after start.
    wait_for: Mapping[str, Any] = field(default_factory=dict)
    # Template variables for ${NAME} placeholders; templating is on when any is given, or ``template``.
    variables: Mapping[str, str] = field(default_factory=dict)
    template: bool = False
    # Secrets: explicit values by valueFrom, then the resolvers in order, then real AWS when ``aws``.
    secrets: Mapping[str, str] = field(default_factory=dict)
    secret_resolvers: Sequence[SecretResolver] = ()
    aws: bool = False  # read secrets (SSM, Secrets Manager) and S3 environment files from real AWS
    # Environment files by their environmentFiles value (an S3 ARN or a path): a local path to read instead.
    environment_files: Mapping[str, str] = field(default_factory=dict)
    environment_file_resolver: Callable[[str, str], str | None] | None = None  # (value, container) -> text
    # Per-container changes merged onto the task definition: environment, command, image, dockerLabels.
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    adjust: Callable[[dict[str, Any], str], None] | None = None  # may change the loaded definition in place
    image_resolver: Callable[[str, str], str | None] | None = None  # (image, container) -> image to run
    registry_auth: Callable[[str, str], Mapping[str, str] | None] | None = None  # (image, container) -> auth
    show_secrets: bool = False  # resolved secret values unmasked in logs, reasons and reports (local debugging)

    def __repr__(self) -> str:
        # Secret values and credentials never show: only which ones were given.
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["secrets"] = dict.fromkeys(self.secrets, MASK)
        if self.credentials is not None:
            shown["credentials"] = dict.fromkeys(self.credentials, MASK)
        return f"TaskOptions({', '.join(f'{name}={value!r}' for name, value in shown.items())})"
