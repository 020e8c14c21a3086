"""The ECS API model that botocore ships, read without importing botocore.

Importing botocore's session, client and model modules takes about 0.15 s, and every run given a task
definition checks it at its start. The check needs only the model's shapes, so this module reads botocore's
own model file (``botocore/data/ecs/<latest version>/service-2.json[.gz]``) as JSON and walks it with the
few attributes of ``botocore.model.Shape`` the check uses. Where botocore could read something else
(``AWS_DATA_PATH``, models under ``~/.aws/models``, a ``data_path`` or ``api_versions`` setting in the AWS
config file, an ``sdk-extras`` file to merge), the model comes from a botocore session instead, as it did
before, so the result is always the model botocore itself would use.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ModelShape", "ecs_model", "ecs_model_file", "operation_input"]

SERVICE = "ecs"
_TYPE = "service-2"


class ModelShape:
    """A shape of the model: the parts of ``botocore.model.Shape`` that checking a request needs."""

    __slots__ = ("_members", "_model", "_shapes", "name")

    def __init__(self, name: str, shapes: Mapping[str, Any], traits: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self._shapes = shapes
        # Traits written on the reference to a shape are merged over it, as botocore merges them.
        self._model: Mapping[str, Any] = {**shapes[name], **traits} if traits else shapes[name]
        self._members: dict[str, ModelShape] | None = None

    def __repr__(self) -> str:
        return f"<ModelShape({self.name})>"

    @property
    def type_name(self) -> str:
        return str(self._model["type"])

    @property
    def metadata(self) -> Mapping[str, Any]:
        """``min``, ``max``, ``enum``, ``required``, ``pattern`` and the like, as botocore gives them."""
        return self._model

    @property
    def required_members(self) -> list[str]:
        return list(self._model.get("required", ()))

    @property
    def enum(self) -> list[str]:
        return list(self._model.get("enum", ()))

    @property
    def members(self) -> dict[str, ModelShape]:
        if self._members is None:
            refs = self._model.get("members", {})
            self._members = {name: self._ref(ref) for name, ref in refs.items()}
        return self._members

    @property
    def member(self) -> ModelShape:
        """A list's item shape."""
        return self._ref(self._model["member"])

    @property
    def key(self) -> ModelShape:
        """A map's key shape."""
        return self._ref(self._model["key"])

    @property
    def value(self) -> ModelShape:
        """A map's value shape."""
        return self._ref(self._model["value"])

    def _ref(self, ref: Mapping[str, Any]) -> ModelShape:
        traits = {key: value for key, value in ref.items() if key != "shape"}
        return ModelShape(ref["shape"], self._shapes, traits)


def operation_input(operation: str) -> ModelShape | None:
    """The input shape of ``operation`` in the ECS model; None when the model has no such input."""
    model = ecs_model()
    ref = model.get("operations", {}).get(operation, {}).get("input")
    if not ref:
        return None
    return ModelShape(ref["shape"], model["shapes"])


@functools.cache
def ecs_model() -> Mapping[str, Any]:
    """The ECS model as botocore would load it: from its own file where that is what botocore reads. A file
    that cannot be read is left to botocore, whose error then says what is wrong with its installation."""
    path = ecs_model_file()
    if path is not None:
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8") as f:
                loaded: Mapping[str, Any] = json.load(f)
            return loaded
        except (OSError, EOFError, ValueError):  # unreadable, truncated, not JSON (or not UTF-8)
            pass
    import botocore.session  # the slow, general way: every setting, search path and extra botocore knows

    return dict(botocore.session.get_session().get_service_data(SERVICE))


def ecs_model_file() -> Path | None:
    """The file botocore's loader reads the ECS model from, where that can be told without it: None when
    its search could find another (a user's data path or models) or an extra it would merge."""
    if os.environ.get("AWS_DATA_PATH") or _config_may_choose_the_model():
        return None
    if (Path(os.path.expanduser("~")) / ".aws" / "models" / SERVICE).exists():
        return None
    root = _botocore_root()
    if root is None:
        return None
    service = root / "data" / SERVICE
    try:
        versions = sorted(p for p in service.iterdir() if _model_in(p))
    except OSError:
        return None
    if not versions:
        return None
    latest = versions[-1]  # botocore takes the greatest API version (a date) that has the file
    if any(latest.glob(f"{_TYPE}.*-extras.json*")):
        return None
    return _model_in(latest)


def _model_in(version: Path) -> Path | None:
    for name in (f"{_TYPE}.json", f"{_TYPE}.json.gz"):  # botocore's order
        if (version / name).is_file():
            return version / name
    return None


def _botocore_root() -> Path | None:
    """The folder of the installed botocore package, found without importing it."""
    spec = importlib.util.find_spec("botocore")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _config_may_choose_the_model() -> bool:
    """Whether the AWS config file may set botocore's ``data_path`` or ``api_versions`` (read coarsely, as
    botocore reads names: any mention in any case sends the model through botocore)."""
    name = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    try:
        text = Path(os.path.expanduser(os.path.expandvars(name))).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    text = text.lower()
    return "data_path" in text or "api_versions" in text
