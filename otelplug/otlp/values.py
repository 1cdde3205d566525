"""AnyValue and attribute conversion between Python values and OTLP."""
from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList


def to_any(v) -> AnyValue:
    if v is None:
        return AnyValue()
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return AnyValue(bytes_value=bytes(v))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=to_kv(v)))
    if isinstance(v, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[to_any(x) for x in v]))
    raise TypeError(f"cannot encode {type(v).__name__} as an OTLP AnyValue")


def to_kv(attrs) -> list[KeyValue]:
    return [KeyValue(key=str(k), value=to_any(v)) for k, v in (attrs or {}).items()]


def from_any(av: AnyValue):
    which = av.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(from_any(x) for x in av.array_value.values)
    if which == "kvlist_value":
        return from_kv(av.kvlist_value.values)
    return getattr(av, which)


def from_kv(kvs) -> dict:
    return {kv.key: from_any(kv.value) for kv in kvs}
