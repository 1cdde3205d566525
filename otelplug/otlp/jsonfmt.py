"""OTLP-JSON: the protobuf JSON mapping with OTLP's two exceptions: trace
and span ids are hex strings (not base64), and enums are integers."""
from __future__ import annotations

import base64
import binascii
import json

from google.protobuf import json_format

_ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def _walk(obj, fix):
    if isinstance(obj, dict):
        return {k: (fix(v) if k in _ID_KEYS and isinstance(v, str) else _walk(v, fix))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_walk(v, fix) for v in obj]
    return obj


def to_dict(message) -> dict:
    d = json_format.MessageToDict(message, use_integers_for_enums=True)
    return _walk(d, lambda v: base64.b64decode(v).hex())


def to_json(message) -> str:
    return json.dumps(to_dict(message), separators=(",", ":"))


def _json_kind(v) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(v), "a number")


def parse(data, message_class):
    """Parse OTLP-JSON (bytes, str or dict) into ``message_class``; raises
    ValueError with the reason on anything invalid."""
    try:
        obj = json.loads(data) if isinstance(data, (bytes, str)) else data
    except ValueError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        # json_format would read ``[]`` or ``1`` as an empty request
        raise ValueError(f"an OTLP-JSON request must be a JSON object, got {_json_kind(obj)}")

    def fix(v):
        try:
            return base64.b64encode(bytes.fromhex(v)).decode()
        except ValueError:
            raise ValueError(f"invalid hex id {v!r}") from None

    try:
        return json_format.ParseDict(_walk(obj, fix), message_class(), ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error) as exc:
        raise ValueError(f"invalid OTLP-JSON: {exc}") from None
