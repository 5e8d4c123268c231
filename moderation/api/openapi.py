"""The OpenAPI 3.1 document, served at ``/api/v1/openapi.json``, generated from the routes.

Each view says next to its route, with ``@documented``, what it reads and answers: the
pydantic models it validates with or answers with (``moderation.api.responses``), its query
parameters as a model, its errors and who may call it; its docstring is the summary. The
document walks the app's routes, has pydantic write the models' schemas and apispec put the
paths together. A view without ``@documented`` is left out, which the tests catch.
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from apispec import APISpec
from flask import Flask, current_app
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from moderation.api import api_v1, responses
from moderation.services.webhooks import COMMENT_DECIDED, COMMENT_MODERATED

REF = "#/components/schemas/{model}"
View = TypeVar("View", bound=Callable[..., Any])
# A pydantic model, or the name of a component schema another source gives (``components``).
Schema = type[BaseModel] | str


@dataclass(frozen=True)
class Security:
    """A security scheme; an operation names the one it needs, or None when it is public."""

    name: str
    scheme: dict[str, Any]


@dataclass(frozen=True)
class Tag:
    """A group of operations in the document."""

    name: str
    description: str


@dataclass(frozen=True)
class Answer:
    """A success response: its status, its body (None: no JSON schema) and what it means."""

    status: int
    body: Schema | None
    description: str
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Header:
    """A request header an operation reads."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class ErrorShape:
    """A compatible API's errors: their schema, and what each status means there."""

    schema: Schema
    descriptions: Mapping[int, str]


SITE_KEY = Security(
    "siteKey",
    {
        "type": "http",
        "scheme": "bearer",
        "description": "The site's secret API key (`msk_...`), from `moderation create-site`.",
    },
)
SITE = Tag("site", "Your site's server, with its secret key: comments, articles, webhooks.")
LOCATION = {"Location": "where the comment can be read back"}
_UNDOCUMENTED_METHODS = frozenset({"HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Operation:
    """What the document says about one view."""

    operation_id: str
    answers: tuple[Answer, ...]
    errors: frozenset[int]
    headers: tuple[Header, ...]
    tag: Tag = SITE
    security: Security | None = SITE_KEY
    body: Schema | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    description: str | None = None
    error_shape: ErrorShape | None = None
    # Component schemas the operation refers to by name, from another source than pydantic.
    components: Callable[[], dict[str, Any]] | None = None


def documented(
    operation_id: str,
    *answers: Answer,
    errors: Iterable[int] = (),
    headers: Iterable[Header] = (),
    **details: Any,
) -> Callable[[View], View]:
    """Put the view in the OpenAPI document, as ``Operation`` says; its docstring is the
    summary (and description). ``{name}`` in the id takes the value of an ``any()`` part."""
    operation = Operation(operation_id, answers, frozenset(errors), tuple(headers), **details)

    def describe(view: View) -> View:
        view.openapi_operation = operation  # type: ignore[attr-defined]
        return view

    return describe


# --- Errors ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCase:
    """An error status: its component name, what it means, and an example."""

    name: str
    description: str
    code: str
    message: str
    field: str | None = None

    def example(self) -> dict[str, Any]:
        """The example body, as the API's error model writes it."""
        detail = responses.ErrorDetail(code=self.code, message=self.message, field=self.field)
        return responses.Error(error=detail).model_dump(exclude_none=True)


ERRORS = {
    400: ErrorCase(
        "BadRequest",
        "the request cannot be read: malformed JSON, or the wrong kind of key",
        "malformed_json",
        "the body is not valid JSON",
    ),
    401: ErrorCase(
        "Unauthorized",
        "no key or token, or not a valid one",
        "unauthorized",
        "send the site key as 'Authorization: Bearer <key>'",
    ),
    403: ErrorCase(
        "Forbidden",
        "this page's Origin may not use the key, or a write came without one",
        "origin_not_allowed",
        "https://evil.example may not use this key",
    ),
    404: ErrorCase(
        "NotFound",
        "no such thing on the sites the key or token sees",
        "not_found",
        "no such comment",
    ),
    409: ErrorCase(
        "Conflict",
        "refused as things stand: a closed article, a reused Idempotency-Key, a stale version",
        "article_closed",
        "this article is closed for comments",
    ),
    413: ErrorCase(
        "PayloadTooLarge",
        "the body is too large",
        "body_too_large",
        "the body is larger than 64 KiB",
    ),
    415: ErrorCase(
        "UnsupportedMediaType",
        "the body is not application/json",
        "unsupported_media_type",
        "send the body as application/json",
    ),
    422: ErrorCase(
        "Invalid",
        "a field or parameter is missing or invalid; `field` names it",
        "invalid",
        "text: must not be empty or whitespace only",
        "text",
    ),
    429: ErrorCase(
        "TooManyRequests",
        "too many requests; `Retry-After` says when to try again",
        "too_many_requests",
        "too many comments in a short time; try again later",
    ),
    503: ErrorCase(
        "Unavailable",
        "the database or the workers are not answering; nothing was stored",
        "database_unavailable",
        "the database is not answering; nothing was stored, retry shortly",
    ),
}
# Every documented route is rate-limited (per key, per client address or per site).
_ALWAYS = frozenset({429})


def _error_response(description: str, schema: dict[str, Any], status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    response["content"] = {"application/json": {"schema": schema}}
    if status in (429, 503):
        retry_after = {"description": "seconds to wait", "schema": {"type": "integer"}}
        response["headers"] = {"Retry-After": retry_after}
    return response


# --- Schemas -----------------------------------------------------------------------------------


class OpenApiJsonSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema without a title on every field, and without ``default: null``
    on fields that are left out rather than sent as null."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        """Field names say enough."""
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        """A default of None is documented only where null is a value the field takes."""
        json_schema = super().default_schema(schema)
        default_none = "default" in json_schema and json_schema["default"] is None
        if default_none and not _admits_null(json_schema):
            del json_schema["default"]
        return json_schema


def _admits_null(json_schema: JsonSchemaValue) -> bool:
    types = json_schema.get("type")
    if types == "null" or (isinstance(types, list) and "null" in types):
        return True
    return any(_admits_null(option) for option in json_schema.get("anyOf", ()))


def model_schemas(models: Iterable[type[BaseModel]]) -> tuple[dict[str, Any], dict[type, str]]:
    """Component schemas of the models and of everything they refer to, and each model's name."""
    ordered = sorted(set(models), key=lambda model: (model.__name__, model.__module__))
    refs, top = models_json_schema(
        [(model, "validation") for model in ordered],
        ref_template=REF,
        schema_generator=OpenApiJsonSchema,
    )
    names = {model: refs[(model, "validation")]["$ref"].rsplit("/", 1)[1] for model in ordered}
    return top.get("$defs", {}), names


# --- Routes ------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")
PATH_PARAMETERS = {
    "public_id": "an id this API gave out",
    "article_id": "the site's own id of the article; it may contain slashes",
    "key": "the site's publishable key (`mpk_...`)",
}


@dataclass(frozen=True)
class Route:
    """One method of one OpenAPI path, and the view that answers it."""

    path: str
    method: str
    view: Callable[..., Any]
    operation: Operation
    values: dict[str, str]


def documented_routes(app: Flask) -> Iterator[Route]:
    """The app's routes whose views are ``@documented``, one per method and ``any()`` value."""
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        operation = getattr(view, "openapi_operation", None)
        if view is None or operation is None:
            continue
        for method in sorted((rule.methods or set()) - _UNDOCUMENTED_METHODS):
            for path, values in _expansions(rule.rule):
                yield Route(path, method.lower(), view, operation, values)


def _expansions(rule: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The rule as OpenAPI paths: ``<x>`` as ``{x}``, and a path per value of an ``any()``."""
    choices = [
        [(match["name"], value.strip()) for value in match["args"].split(",")]
        for match in _VARIABLE.finditer(rule)
        if match["converter"] == "any"
    ]
    for picked in itertools.product(*choices):
        values = dict(picked)

        def variable(match: re.Match[str], values: dict[str, str] = values) -> str:
            return values.get(match["name"], "{" + match["name"] + "}")

        yield _VARIABLE.sub(variable, rule), values


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = re.findall(r"{(\w+)}", path)
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        | ({"description": PATH_PARAMETERS[name]} if name in PATH_PARAMETERS else {})
        for name in names
    ]


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    parameters = []
    for name, property_schema in schema.get("properties", {}).items():
        parameter_schema = dict(property_schema)
        description = parameter_schema.pop("description", None)
        parameter = {"name": name, "in": "query", "required": name in required}
        parameter["schema"] = parameter_schema
        parameters.append(parameter | ({"description": description} if description else {}))
    return parameters


# --- The document ------------------------------------------------------------------------------


class DocumentBuilder:
    """Turns the documented routes into the document."""

    def __init__(self, routes: list[Route]):
        self.routes = routes
        operations = [route.operation for route in routes]
        models = {responses.Error, responses.WebhookEvent}
        for operation in operations:
            models |= _models_of(operation)
        self.schemas, self.names = model_schemas(models)
        self.query_schemas = {
            operation.query: self.schemas.pop(self.names[operation.query])
            for operation in operations
            if operation.query is not None and self.names[operation.query] in self.schemas
        }
        for operation in operations:
            if operation.components is not None:
                self.schemas |= operation.components()

    def ref(self, schema: Schema) -> dict[str, str]:
        """A reference to the schema's component."""
        name = schema if isinstance(schema, str) else self.names[schema]
        return {"$ref": REF.format(model=name)}

    def document(self) -> dict[str, Any]:
        """The whole document."""
        spec = APISpec(
            title="Comment moderation API",
            version="1.0.0",
            openapi_version="3.1.0",
            info={"description": _DESCRIPTION},
            security=[{SITE_KEY.name: []}],
            webhooks=self._webhooks(),
        )
        for name, schema in sorted(self.schemas.items()):
            spec.components.schema(name, schema)
        for status, case in ERRORS.items():
            response = _error_response(case.description, self.ref(responses.Error), status)
            response["content"]["application/json"]["example"] = case.example()
            # Registered once an operation refers to it.
            spec.components.response(case.name, response, lazy=True)
        for security in self._unique(route.operation.security for route in self.routes):
            spec.components.security_scheme(security.name, security.scheme)
        for tag in self._unique(route.operation.tag for route in self.routes):
            spec.tag({"name": tag.name, "description": tag.description})
        for path, routes in itertools.groupby(
            sorted(self.routes, key=lambda route: route.path), key=lambda route: route.path
        ):
            spec.path(path, operations={route.method: self._operation(route) for route in routes})
        return spec.to_dict()

    @staticmethod
    def _unique(items: Iterable[Any]) -> list[Any]:
        """Tags or security schemes, one per name, in the order first met."""
        return list({item.name: item for item in items if item is not None}.values())

    def _operation(self, route: Route) -> dict[str, Any]:
        operation = route.operation
        summary, _, rest = (inspect.getdoc(route.view) or "").partition("\n")
        description = operation.description or " ".join(rest.split())
        security = operation.security
        result: dict[str, Any] = {
            "operationId": operation.operation_id.format(**route.values),
            "summary": summary,
            "tags": [operation.tag.name],
            "security": [{security.name: []}] if security else [],
            "parameters": self._parameters(route),
            "responses": self._answers(operation) | self._errors(route),
        }
        if description:
            result["description"] = description
        if operation.body is not None:
            content = {"application/json": {"schema": self.ref(operation.body)}}
            result["requestBody"] = {"required": operation.body_required, "content": content}
        return result

    def _parameters(self, route: Route) -> list[dict[str, Any]]:
        operation = route.operation
        query = self.query_schemas.get(operation.query, {}) if operation.query else {}
        headers = [
            {"name": header.name, "in": "header", "required": header.required}
            | {"description": header.description, "schema": dict(header.schema)}
            for header in operation.headers
        ]
        return _path_parameters(route.path) + _query_parameters(query) + headers

    def _answers(self, operation: Operation) -> dict[str, Any]:
        answers = {}
        for answer in operation.answers:
            schema = {"type": "string"} if answer.body is None else self.ref(answer.body)
            response: dict[str, Any] = {"description": answer.description}
            response["content"] = {answer.media_type: {"schema": schema}}
            if answer.headers:
                response["headers"] = {
                    name: {"description": text, "schema": {"type": "string"}}
                    for name, text in answer.headers.items()
                }
            answers[str(answer.status)] = response
        return answers

    def _errors(self, route: Route) -> dict[str, Any]:
        # A path parameter that cannot be routed (a newline, say) is a 404 on any operation.
        unroutable = {404} if "{" in route.path else set()
        statuses = sorted(route.operation.errors | _ALWAYS | unroutable)
        shape = route.operation.error_shape
        if shape is None:
            return {str(status): ERRORS[status].name for status in statuses}
        return {str(status): self._other_error(shape, status) for status in statuses}

    def _other_error(self, shape: ErrorShape, status: int) -> dict[str, Any]:
        description = shape.descriptions.get(status, ERRORS[status].description)
        return _error_response(description, self.ref(shape.schema), status)

    def _webhooks(self) -> dict[str, Any]:
        signature = {
            "name": "Moderation-Signature",
            "in": "header",
            "required": True,
            "description": 't=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>',
            "schema": {"type": "string"},
        }
        body = {"application/json": {"schema": self.ref(responses.WebhookEvent)}}
        return {
            name: {
                "post": {
                    "summary": summary,
                    "parameters": [signature],
                    "requestBody": {"required": True, "content": body},
                    "responses": {"2XX": {"description": "received; anything else is retried"}},
                }
            }
            for name, summary in _WEBHOOK_EVENTS.items()
        }


_DESCRIPTION = (
    "Post readers' comments, read back how they were decided and why, and moderate them. "
    'Every error answers `{"error": {"code", "message", "field"?}}`, except those of the '
    "compatible APIs, which answer in their own protocol's shape."
)
_WEBHOOK_EVENTS = {
    COMMENT_DECIDED: "The system decided a comment (rules or model).",
    COMMENT_MODERATED: "A moderator approved or rejected a comment.",
}


def _models_of(operation: Operation) -> set[type[BaseModel]]:
    shape = operation.error_shape
    schemas = [
        operation.body,
        operation.query,
        shape.schema if shape else None,
        *(answer.body for answer in operation.answers),
    ]
    return {schema for schema in schemas if isinstance(schema, type)}


def openapi_document(app: Flask) -> dict[str, Any]:
    """The app's document, built on first use."""
    document = app.extensions.get("moderation.openapi")
    if document is None:
        document = DocumentBuilder(list(documented_routes(app))).document()
        app.extensions["moderation.openapi"] = document
    return document


@api_v1.get("/openapi.json")
def openapi_json():
    """The API's OpenAPI document."""
    return openapi_document(current_app)
