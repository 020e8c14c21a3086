"""``--ecs-reuse``: the session task stays up after the run, and the next run adopts it when nothing changed.

A run that keeps its session task writes a reuse record in this host's lease directory (``reuse/<key>.json``,
one per task definition file and engine): the task's identity (id, creation time, the secret its endpoint
ids derive from), the endpoint port its containers were told, a fingerprint of its effective plan (every
container's create request but the run's own labels, and each image's id) and each container's start time.
The next run plans the task with that identity and the same port, and adopts the containers when the plan's
fingerprint is the same and every container is as it was left (none gone, exited or restarted); otherwise
it removes them and starts the task afresh. The terminal summary says which, and why.

The run's endpoint server keeps serving the kept task after the run (a local server; one behind the relay
ends with its run), so its containers' metadata and credentials endpoints keep answering between runs, and
the next run takes the server up with the task; the record says where it is. Should it be gone, the next
run serves the task from its own server, on the port the containers were told.

The containers carry ``pytest-ecstask.reuse`` (the record's path): the sweep leaves them alone while a run
uses them or one used them within the orphan age, and removes them once idle longer or when the record is
gone; ``--ecs-sweep-orphans --ecs-include-kept`` removes them at once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ecstask import reporting
from pytest_ecstask.errors import EcsTaskError
from pytest_ecstask.lifecycle import (
    LABEL_HOST,
    LABEL_KEEP,
    LABEL_LEASE,
    LABEL_OWNER,
    LABEL_REUSE,
    LABEL_SENTINEL,
    LABEL_SESSION,
    LABEL_TASK,
    Owner,
    lease_dir,
    private_dir,
    write_private,
)

if TYPE_CHECKING:
    import docker

    from pytest_ecstask.endpointids import EndpointInfo
    from pytest_ecstask.plan import ContainerPlan, TaskPlan
    from pytest_ecstask.run import Run
    from pytest_ecstask.runtime import Engine, Inspected
    from pytest_ecstask.task import Task

# Labels that name the run, not the task: a run that adopts the task gives other values to them.
RUN_LABELS = (LABEL_SESSION, LABEL_LEASE, LABEL_HOST, LABEL_OWNER, LABEL_KEEP, LABEL_SENTINEL, LABEL_REUSE)


def record_path(source: Path, engine: Engine) -> Path:
    """Where the reuse record of the task defined in ``source`` on this engine is kept."""
    key = hashlib.sha256(f"{source.resolve()}\n{engine.api.base_url}\n{engine.host}".encode()).hexdigest()[:16]
    return records_dir() / f"{key}.json"


def records_dir() -> Path:
    """This user's reuse records (the lease directory is shared by every user's runs): a folder of this
    user's only, checked before a record in it is trusted (it says where to send the server's token)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return private_dir(lease_dir() / f"reuse-{uid}")


def fingerprint(plan: TaskPlan, image_ids: Mapping[str, str]) -> dict[str, str]:
    """What must be the same for a kept task to be adopted: per container, a hash of its create request
    without the run's labels, and its image's id; and one for the task's network and volumes."""
    out: dict[str, str] = {}
    containers = [*plan.containers, *([plan.pause] if plan.pause is not None else [])]
    for c in containers:
        body = dict(c.create_body)
        body["Labels"] = {k: v for k, v in (body.get("Labels") or {}).items() if k not in RUN_LABELS}
        out[c.name] = _digest({"body": body, "image": image_ids.get(c.name, "")})
    network = plan.network.docker_name if plan.network is not None else ""
    volumes = sorted((v.docker_name, v.scope) for v in plan.volumes if v.docker_name)
    out[""] = _digest({"network": network, "volumes": volumes, "mode": plan.network_mode})
    return out


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:24]


def image_ids(api: docker.APIClient, plan: TaskPlan) -> dict[str, str]:
    """Each container's image id, as the engine has it now; "" for one it does not have."""
    import docker.errors

    ids: dict[str, str] = {}
    for image in {str(c.create_body.get("Image", "")) for c in _with_pause(plan)}:
        try:
            ids[image] = str(api.inspect_image(image)["Id"])
        except docker.errors.NotFound:
            ids[image] = ""
    return {c.name: ids[str(c.create_body.get("Image", ""))] for c in _with_pause(plan)}


def _with_pause(plan: TaskPlan) -> list[ContainerPlan]:
    return [*plan.containers, *([plan.pause] if plan.pause is not None else [])]


def why_not_adopted(
    task: Task, record: Mapping[str, Any], api: docker.APIClient, inspected: Mapping[str, Mapping[str, Any] | None]
) -> str | None:
    """None when the kept task can be adopted as it is; else why not, as the summary says it. ``inspected``:
    its containers' inspect data, by their Docker names (None: gone)."""
    port = task.endpoint.port if task.endpoint is not None else 0
    if port != int(record.get("port") or 0):
        return f"its containers were told endpoint port {record.get('port')}, and this run's server is on {port}"
    changed = _plan_changed(dict(record.get("fingerprint") or {}), fingerprint(task.plan, image_ids(api, task.plan)))
    return changed or _containers_changed(task, dict(record.get("started") or {}), inspected)


def _plan_changed(then: Mapping[str, str], now: Mapping[str, str]) -> str | None:
    for name in sorted(set(then) | set(now)):
        if name not in then or name not in now:
            return f"container {name!r} was {'added' if name in now else 'removed'}"
        if then[name] != now[name]:
            what = "network or volumes" if not name else f"container {name!r}"
            return f"the {what} changed (the task definition, an image or a setting)"
    return None


def _containers_changed(
    task: Task, started: Mapping[str, str], inspected: Mapping[str, Mapping[str, Any] | None]
) -> str | None:
    """Why the kept containers are not as they were left: gone, exited, or started again since."""
    for c in _with_pause(task.plan):
        info = inspected.get(c.docker_name)
        if info is None:
            return f"container {c.name!r} is gone"
        state = info["State"]
        if started.get(c.docker_name) and not state.get("Running"):
            return f"container {c.name!r} exited (code {state.get('ExitCode')})"
        if started.get(c.docker_name) and state.get("StartedAt") != started[c.docker_name]:
            return f"container {c.name!r} was started again"
    return None


def session_task(
    run: Run, source: Path, arguments: Mapping[str, Any], base_dir: Path, credentials: Mapping[str, str] | None
) -> Task:
    """The session task: the one an earlier run kept, when it can be adopted; else a new one, kept in turn.
    A Docker or endpoint error fails the test with its message, as a start does."""
    import docker.errors

    try:
        return _session_task(run, source, arguments, base_dir, credentials)
    except (EcsTaskError, docker.errors.DockerException, OSError) as exc:
        message = f"ecstask: --ecs-reuse: {type(exc).__name__}: {exc}"
    pytest.fail(message, pytrace=False)


def _session_task(
    run: Run, source: Path, arguments: Mapping[str, Any], base_dir: Path, credentials: Mapping[str, str] | None
) -> Task:
    from pytest_ecstask.lifecycle import lease_is_held

    path = record_path(source, run.connections.engine())
    owner = replace(run.owner, reuse=str(path))
    record = _read(path)
    if record is not None and record.get("lease") and lease_is_held(str(record["lease"])):
        reporting.shared_note(run, "reuse: the kept task is in use by another run; this run's session task is its own")
        return run.start_task(source, arguments, base_dir, credentials)
    if record is None:
        reporting.shared_note(run, "reuse: no task kept by an earlier run to adopt; the session task is new")
        return run.start_task(source, arguments, base_dir, credentials, owner=owner)
    _write(path, {**record, "lease": run.owner.lease})  # claimed before this run's first sweep can judge it
    # Nothing is created when the task is adopted: the first-use sweep goes on meanwhile (it leaves a kept
    # task its record says is in use alone); a task started afresh waits for it.
    run.engine()
    server = _kept_server(record, run.owner.lease)
    why = _why_not(run, source, arguments, base_dir, credentials, record, owner, server)
    if isinstance(why, str):
        from pytest_ecstask.endpoints import release_kept
        from pytest_ecstask.runtime import remove_labelled

        remove_labelled(run.engine().api, f"{LABEL_TASK}={record['task_id']}")
        if server is not None:
            release_kept(server, str(record["task_id"]))
        path.unlink(missing_ok=True)
        kept = str(record["task_id"])[:12]
        reporting.shared_note(run, f"reuse: replaced the task an earlier run kept ({kept}): {why}")
        return run.start_task(source, arguments, base_dir, credentials, owner=owner)
    task, inspected = why
    run.open_tasks.append(task)  # before anything can fail: the run's end removes it then
    task._runner.attach(owned=True, inspected=inspected)
    # Its server (the one that kept serving it, or this run's) gets this run's registration: the credentials
    # of this run, which xdist workers read back from it.
    task._register(str(record.get("pull_started", "")), str(record.get("pull_stopped", "")))
    reporting.shared_note(run, f"reuse: adopted task {task.family}:{task.revision} {task.id}, kept by an earlier run")
    return task


def _kept_server(record: Mapping[str, Any], lease: str) -> EndpointInfo | None:
    """The server that kept serving the task since its run, taken up by this run; None when there is none."""
    from pytest_ecstask.endpoints import adopt_served, info_from_record

    server = info_from_record(record.get("server"))
    if server is None or not adopt_served(server, str(record["task_id"]), lease):
        return None
    return server


def _why_not(
    run: Run,
    source: Path,
    arguments: Mapping[str, Any],
    base_dir: Path,
    credentials: Mapping[str, str] | None,
    record: Mapping[str, Any],
    owner: Owner,
    server: EndpointInfo | None,
) -> tuple[Task, Inspected] | str:
    """The kept task, planned as this run would plan it, with its containers' inspect data, when it can be
    adopted; else why not. ``server``: the one that kept serving it, else the run's own serves it."""
    from pytest_ecstask.runtime import inspect_containers
    from pytest_ecstask.task import create_task

    options = run.task_options(arguments, credentials)
    kept_port = int(record.get("port") or 0)
    if options.endpoint_port and options.endpoint_port != kept_port:
        return f"this run asks for endpoint port {options.endpoint_port}, its containers were told {kept_port}"
    try:
        task = create_task(
            source,
            replace(options, endpoint_port=kept_port),
            owner=owner,
            engine=run.engine(),
            base_dir=base_dir,
            task_id=str(record["task_id"]),
            created=str(record["created"]),
            secret=str(record["secret"]),
            served_by=server,
        )
    except EcsTaskError as exc:
        return str(exc)
    api = run.engine().api
    inspected = inspect_containers(api, [c.docker_name for c in _with_pause(task.plan)])
    return why_not_adopted(task, record, api, inspected) or (task, inspected)


def keep(run: Run, task: Task, source: Path, kept: bool | None = None) -> None:
    """At the end of the run: the session task stays up, recorded for the next run to adopt. ``kept``: whether
    it is the one to keep (default: whether it was planned as such; not when another run used the kept one)."""
    import docker.errors

    from pytest_ecstask.endpoints import info_record, keep_served

    path = record_path(source, task._engine)
    if not (task.plan.options.owner.reuse if kept is None else kept):
        run.close_task(task)
        return
    if task.status != "RUNNING":
        reporting.shared_note(run, f"reuse: task {task.family}:{task.revision} is {task.status}: not kept")
        path.unlink(missing_ok=True)
        run.close_task(task)
        return
    try:
        record = _record_of(task, source)
        served = task.endpoint is not None and keep_served(task.endpoint, task.id)
        _write(path, {**record, "server": info_record(task.endpoint) if served and task.endpoint else None})
    except (docker.errors.DockerException, OSError, KeyError) as exc:
        reporting.warn(run.config, f"ecstask: --ecs-reuse: task {task.id} not kept: {type(exc).__name__}: {exc}")
        run.close_task(task)
        return
    from pytest_ecstask.taskstate import Role

    task._runner.machine.role = Role.FOLLOWER  # closing it now only stops following it
    if task in run.open_tasks:
        run.open_tasks.remove(task)
    task.close()
    reporting.shared_note(
        run,
        f"reuse: task {task.family}:{task.revision} {task.id} kept for the next run (--ecs-reuse); "
        "pytest --ecs-sweep-orphans --ecs-include-kept removes it",
    )


def _record_of(task: Task, source: Path) -> dict[str, Any]:
    """What the next run needs to adopt ``task``: the images its containers run (not what their tags name
    now: a rebuild during the run is a change), and when each running container started."""
    from pytest_ecstask.runtime import inspect_containers

    inspected = inspect_containers(task._engine.api, [c.docker_name for c in _with_pause(task.plan)])
    started, images = {}, {}
    for c in _with_pause(task.plan):
        info = inspected[c.docker_name] or {"State": {}}  # gone: the next run replaces the task
        started[c.docker_name] = info["State"].get("StartedAt") if info["State"].get("Running") else ""
        images[c.name] = str(info.get("Image", ""))
    pull_started, pull_stopped = task._pull_times
    return {
        "source": str(source.resolve()),
        "task_id": task.id,
        "created": task.plan.options.created,
        "secret": task.plan.options.secret,
        "port": task.endpoint.port if task.endpoint is not None else 0,
        "fingerprint": fingerprint(task.plan, images),
        "started": started,
        "pull_started": pull_started,
        "pull_stopped": pull_stopped,
        "lease": "",
    }


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "task_id" in data else None


def _write(path: Path, record: Mapping[str, Any]) -> None:
    """Readable by its user only: the secret the task's endpoint ids derive from is in it, and the token of
    the server that kept serving it."""
    private_dir(path.parent)
    write_private(path, json.dumps(record))
