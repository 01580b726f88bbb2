"""DynamoDB calls answered by moto in process: botocore validates and serializes a call as
for AWS, and moto's DynamoDB handler answers its body, without the signed HTTP request in
between that botocore would build and moto read back (:func:`quick_calls`, part of
:func:`stepwell.local.quick_moto.quick_moto`)."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.parsers import JSONParser

from stepwell.local.attribute_values import plain


class _Call:
    """A DynamoDB request handed to moto as botocore built it (its JSON body), in place of
    the signed HTTP request moto would otherwise read it back from."""

    method = "POST"

    def __init__(self, url: str, operation: str, body: bytes, access_key: str) -> None:
        self.url = url
        self.operation = operation
        self.body = body
        self.access_key = access_key


class _Parser(JSONParser):
    """botocore's JSON parser, reading an attribute value with no binary in it as it is: its
    walk member by member gives back the same (:func:`stepwell.local.attribute_values.plain`)."""

    def _handle_structure(self, shape: Any, value: Any) -> Any:
        if shape.name == "AttributeValue" and plain(value):
            return value
        return super()._handle_structure(shape, value)  # type: ignore[misc]


Answer = Callable[..., Any]
_ANSWERING: list[Answer] = []
"""The innermost :func:`quick_calls`' answer (none outside: every call takes the HTTP path)."""


def _before_call(**kwargs: Any) -> Any:
    return _ANSWERING[-1](**kwargs) if _ANSWERING else None


_HOOK = "before-call.dynamodb"
_HOOK_ID = "stepwell-quick-calls"


def _register_hook() -> None:
    """The hook in every botocore session made from now on, and in boto3's default one. Like
    moto's own stub it is put there when this module is imported, and stays (it answers
    nothing outside :func:`quick_calls`), so that a client made before or inside the context
    is answered in it."""
    import boto3
    import botocore.handlers

    entry = (_HOOK, _before_call, botocore.handlers.REGISTER_LAST)
    if entry not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append(entry)
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register_last(_HOOK, _before_call, unique_id=_HOOK_ID)


_register_hook()


@contextmanager
def quick_calls() -> Iterator[None]:
    """DynamoDB requests answered by moto in process, without an HTTP request in between.

    botocore signs every request and builds an HTTP request of it; moto's stub then matches
    its URL against every service's, builds a WSGI request of it and parses that again before
    DynamoDB's handler sees the body: more than half the CPU of a small request (the storage
    floor's). Inside, a DynamoDB
    call that moto would answer (moto mocking, the endpoint one of moto's DynamoDB URLs) is
    handed to moto's stub at ``before-call``, after botocore validated and serialized it and
    after every other ``before-call`` hook (an injected fault still comes first): the stub's
    ``enabled`` flag and whatever serializes its calls apply as to any request. moto's own
    handler then runs as over HTTP (its parameter parser on the same body, its dispatch,
    errors and serializer), and botocore's parser reads the answer, modelled error fields
    included, as from the wire. What the HTTP path has and this one does not: the signature
    (moto checks none unless IAM checks are on, and then the HTTP path is taken), botocore's
    retries (moto answers nothing that botocore retries) and moto's request recorder (when it
    records, the HTTP path is taken). A client made before this module was imported takes the
    HTTP path.
    """
    from botocore.parsers import create_parser

    models: Any = importlib.import_module("moto.core.models")
    index: Any = importlib.import_module("moto.backend_index")
    config: Any = importlib.import_module("moto.core.config")
    parse: Any = importlib.import_module("moto.core.parse")
    settings: Any = importlib.import_module("moto.settings")
    recorder: Any = importlib.import_module("moto.moto_api").recorder
    iam: Any = importlib.import_module("moto.iam.models")
    utils: Any = importlib.import_module("moto.core.utils")
    responses: Any = importlib.import_module("moto.core.responses")
    handler_class: Any = importlib.import_module("moto.dynamodb.responses").DynamoHandler
    stubber_class = importlib.import_module("moto.core.botocore_stubber").BotocoreStubber
    original_process = stubber_class.process_request
    moto_service = utils.get_service_model("dynamodb")
    parsers: dict[str, Any] = {}
    dynamodb_urls: dict[str, bool] = {}
    """URL -> whether moto's stub would hand it to DynamoDB's handler (its first match)."""

    def moto_answers(url: str) -> bool:
        found = dynamodb_urls.get(url)
        if found is None:
            service = next(
                (s for s, pattern in index.backend_url_patterns if pattern.match(url)), None
            )
            found = dynamodb_urls[url] = service == "dynamodb"
        return (
            found and not config.passthrough_url(url) and not config.passthrough_service("dynamodb")
        )

    def answer(call: _Call) -> Any:
        """What moto's stub does with a request, from the parsing of its body on."""
        parser = parsers.get(call.operation)
        if parser is None:
            parser = parsers[call.operation] = parse.JSONParser(
                moto_service.operation_model(call.operation),
                map_type=handler_class.PROTOCOL_PARSER_MAP_TYPE,
            )
        handler = handler_class()
        handler._get_action = lambda: call.operation
        handler.determine_response_protocol = lambda _service: "json"
        handler.is_werkzeug_request = False
        handler.normalized_request = None
        handler.body = handler.raw_body = call.body.decode("utf-8")
        handler.uri, handler.method, handler.path = call.url, call.method, "/"
        handler.querystring, handler.data, handler.uri_match = {}, {}, {}
        handler.headers = {"Content-Type": "application/x-amz-json-1.0"}
        handler.region = handler.region_regex.search(call.url).group(1)
        handler.partition = responses.get_partition(handler.region)
        handler.response_headers = {
            "server": "amazon.com",
            "date": responses.http_date(responses.utcnow()),
        }
        handler.params = parser.parse({"body": handler.body, "headers": {}})
        handler.access_key = call.access_key
        handler.current_account = iam.get_account_id_from(call.access_key)
        iam.mark_account_as_visited(
            account_id=handler.current_account,
            access_key=call.access_key,
            service=handler.service_name,
            region=handler.region,
        )
        return handler.call_action()

    def process_request(self: Any, request: Any) -> Any:
        if isinstance(request, _Call):
            return answer(request)
        return original_process(self, request)

    def call(model: Any, params: dict[str, Any], request_signer: Any = None, **_: Any) -> Any:
        url = params.get("url", "")
        if (
            not models.botocore_stubber.enabled
            or model.has_streaming_output
            or recorder._user_enabled
            or not math.isinf(settings.INITIAL_NO_AUTH_ACTION_COUNT)
            or not handler_class.region_regex.search(url)
            or not moto_answers(url)
        ):
            return None
        # moto takes the account from the signature's access key (none: its default)
        credentials = getattr(request_signer, "_credentials", None)
        access_key = (
            credentials.get_frozen_credentials().access_key if credentials else "AKIAEXAMPLE"
        )
        body = params.get("body") or b"{}"
        request = _Call(
            url, model.name, body if isinstance(body, bytes) else body.encode(), access_key
        )
        http = models.botocore_stubber("before-send", request=request)
        if http is None:
            return None
        response = {
            "headers": http.headers,
            "status_code": http.status_code,
            "body": http.content,
            "context": {"operation_name": model.name},
        }
        protocol = model.service_model.resolved_protocol
        parser = _Parser() if protocol == "json" else create_parser(protocol)
        parsed = parser.parse(response, model.output_shape)
        if http.status_code >= 300:
            # as botocore's endpoint does: the error's modelled members (CancellationReasons)
            code = parsed.get("Error", {}).get("Code")
            shape = model.service_model.shape_for_error_code(code) if code else None
            if shape is not None:
                parsed.update(parser.parse(response, shape))
        if "ResponseMetadata" in parsed:
            parsed["ResponseMetadata"]["RetryAttempts"] = 0
        return http, parsed

    _register_hook()
    stubber_class.process_request = process_request
    _ANSWERING.append(call)
    try:
        yield
    finally:
        _ANSWERING.remove(call)
        stubber_class.process_request = original_process
