"""Payloads and results: a pydantic model built from a job function's signature.

Arguments are validated and serialised to JSON at enqueue, and validated again when the worker
picks the job up, so a model change between the two is caught (the job goes to the dead set with
reason ``invalid_payload``) instead of crashing the handler.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model
from pydantic_core import PydanticSerializationError

from corral.errors import ConfigError, PayloadError, StalePayload

_BAD_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def describe(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(payload)"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class PayloadCodec:
    """Validates a job's arguments and turns them into JSON and back."""

    def __init__(self, fn: Callable[..., Any], job_name: str) -> None:
        self.job_name = job_name
        self.signature = inspect.signature(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception as exc:
            raise ConfigError(f"job {job_name!r}: cannot resolve type hints: {exc}") from exc
        fields: dict[str, Any] = {}
        for name, param in self.signature.parameters.items():
            if param.kind in _BAD_KINDS:
                raise ConfigError(
                    f"job {job_name!r}: *args/**kwargs cannot be validated; name them"
                )
            annotation = hints.get(name, Any)
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[name] = (annotation, default)
        model_name = "".join(p.capitalize() for p in job_name.replace(".", "_").split("_")) + "Args"
        self.model: type[BaseModel] = create_model(
            model_name, __config__=ConfigDict(extra="forbid"), **fields
        )
        self.names = list(fields)
        self._positional = [
            name
            for name, p in self.signature.parameters.items()
            if p.kind
            in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        self.result_adapter: TypeAdapter[Any] = TypeAdapter(hints.get("return", Any))
        # the model's own validator and serializer, called directly: enqueue and the worker
        # use them for every job, and the BaseModel wrappers cost a microsecond each
        self._validate_python = self.model.__pydantic_validator__.validate_python
        self._validate_json = self.model.__pydantic_validator__.validate_json
        self._to_json = self.model.__pydantic_serializer__.to_json

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> BaseModel:
        """Validate call arguments; raises PayloadError naming the field."""
        if not kwargs and len(args) <= len(self._positional):
            # the common case, fast: zip stops at the last argument given (the rest take their
            # defaults); strict=False, as a keyword, made this line cost twice as much
            arguments = dict(zip(self._positional, args))  # noqa: B905
        else:
            try:
                arguments = dict(self.signature.bind(*args, **kwargs).arguments)
            except TypeError as exc:
                raise PayloadError(f"job {self.job_name!r}: {exc}") from None
        try:
            model: BaseModel = self._validate_python(arguments)
            return model
        except ValidationError as exc:
            raise PayloadError(
                f"invalid payload for job {self.job_name!r}: {describe(exc)}",
                errors=[dict(e) for e in exc.errors(include_url=False)],
            ) from None

    def dumps(self, model: BaseModel) -> str:
        return self._to_json(model).decode()

    def loads(self, payload: str) -> dict[str, Any]:
        """JSON back to keyword arguments (pydantic models rebuilt); StalePayload if the payload
        no longer fits the model."""
        try:
            model = self._validate_json(payload)
        except ValidationError as exc:
            raise StalePayload(
                f"payload no longer valid for {self.job_name!r}: {describe(exc)}",
                errors=[dict(e) for e in exc.errors(include_url=False)],
            ) from None
        return model.__dict__  # type: ignore[no-any-return]  # exactly the fields: no extras

    def validate_json(self, payload: str | bytes) -> BaseModel:
        try:
            return self.model.model_validate_json(payload)
        except ValidationError as exc:
            raise PayloadError(
                f"invalid payload for job {self.job_name!r}: {describe(exc)}",
                errors=[dict(e) for e in exc.errors(include_url=False)],
            ) from None

    def dump_result(self, value: Any) -> str:
        """The handler's return value as JSON; PayloadError if it does not fit the declared
        return type (the attempt fails, as any error of the handler's would)."""
        if value is None:  # most handlers return nothing
            return "null"
        try:
            return self.result_adapter.dump_json(value).decode()
        except (PydanticSerializationError, ValidationError) as exc:
            raise PayloadError(f"result of job {self.job_name!r} cannot be stored: {exc}") from None

    def load_result(self, raw: str | None) -> Any:
        """A stored result, validated against the return type; StalePayload if it no longer
        fits (the type changed since the job ran)."""
        if raw is None:
            return None
        try:
            return self.result_adapter.validate_json(raw)
        except ValidationError as exc:
            raise StalePayload(
                f"result of job {self.job_name!r} no longer fits its return type: {describe(exc)}"
            ) from None


def to_json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def from_json(raw: str | None, default: Any = None) -> Any:
    if raw is None or raw == "":
        return default
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
