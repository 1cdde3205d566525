"""A small Thrift serializer: the binary and the compact protocol, for the
few types Jaeger's IDL uses (bool, i32, i64, double, string/binary,
struct, list), plus the compact message header of a oneway call.

Values are plain trees, the same for both protocols:

- a struct is a sequence of ``(field_id, type, value)``; ``None`` values
  (unset optional fields) are skipped.  A struct value may also be
  ``bytes`` already encoded with the same protocol (spans are encoded
  once, then packed into datagrams by size);
- a list is ``(element_type, items)``.

Written from the Thrift protocol specifications (doc/specs/
thrift-binary-protocol.md, thrift-compact-protocol.md); no generated code.
"""
from __future__ import annotations

import struct

BOOL, I32, I64, DOUBLE, STRING, STRUCT, LIST = "bool", "i32", "i64", "double", "string", \
    "struct", "list"

# binary protocol type ids
_BIN = {BOOL: 2, DOUBLE: 4, I32: 8, I64: 10, STRING: 11, STRUCT: 12, LIST: 15}
# compact protocol type ids (bool fields carry their value in the type: 1 true, 2 false)
_CMP = {BOOL: 1, I32: 5, I64: 6, DOUBLE: 7, STRING: 8, LIST: 9, STRUCT: 12}

ONEWAY = 4
_COMPACT_ID = 0x82
_COMPACT_VERSION = 1

_i16 = struct.Struct(">h")
_bin_field = struct.Struct(">bh")
_bin_list = struct.Struct(">bi")
_be_i32 = struct.Struct(">i")
_be_i64 = struct.Struct(">q")
_be_f64 = struct.Struct(">d")
_le_f64 = struct.Struct("<d")
_M64 = (1 << 64) - 1


def signed64(v: int) -> int:
    """An unsigned 64-bit id as the i64 Thrift carries."""
    v &= _M64
    return v - (1 << 64) if v >> 63 else v


def _as_bytes(v) -> bytes:
    return v.encode("utf-8", "surrogatepass") if isinstance(v, str) else bytes(v)


class BinaryWriter:
    """TBinaryProtocol: big-endian fixed-width integers, i32 lengths."""

    def __init__(self):
        self.buf = bytearray()

    def struct(self, fields) -> "BinaryWriter":
        if isinstance(fields, (bytes, bytearray, memoryview)):
            self.buf += fields
            return self
        buf = self.buf
        for fid, tt, v in fields:
            if v is None:
                continue
            buf += _bin_field.pack(_BIN[tt], fid)
            self.value(tt, v)
        buf.append(0)   # STOP
        return self

    def value(self, tt, v) -> None:
        buf = self.buf
        if tt == STRING:
            b = _as_bytes(v)
            buf += _be_i32.pack(len(b))
            buf += b
        elif tt == I64:
            buf += _be_i64.pack(v)
        elif tt == I32:
            buf += _be_i32.pack(v)
        elif tt == STRUCT:
            self.struct(v)
        elif tt == LIST:
            et, items = v
            buf += _bin_list.pack(_BIN[et], len(items))
            for it in items:
                self.value(et, it)
        elif tt == BOOL:
            buf.append(1 if v else 0)
        elif tt == DOUBLE:
            buf += _be_f64.pack(v)
        else:
            raise TypeError(f"unsupported thrift type {tt!r}")


def _zigzag(n: int, bits: int) -> int:
    return ((n << 1) ^ (n >> (bits - 1))) & ((1 << bits) - 1)


class CompactWriter:
    """TCompactProtocol: zigzag varints, field-id deltas, little-endian
    doubles, list sizes folded into the element-type byte when < 15."""

    def __init__(self):
        self.buf = bytearray()

    def varint(self, n: int) -> None:
        buf = self.buf
        while n > 0x7F:
            buf.append((n & 0x7F) | 0x80)
            n >>= 7
        buf.append(n)

    def message_begin(self, name: str, mtype: int, seqid: int) -> "CompactWriter":
        self.buf.append(_COMPACT_ID)
        self.buf.append(_COMPACT_VERSION | (mtype << 5))
        self.varint(seqid & 0xFFFFFFFF)
        self.value(STRING, name)
        return self

    def struct(self, fields) -> "CompactWriter":
        if isinstance(fields, (bytes, bytearray, memoryview)):
            self.buf += fields
            return self
        buf = self.buf
        last = 0
        for fid, tt, v in fields:
            if v is None:
                continue
            ct = (1 if v else 2) if tt == BOOL else _CMP[tt]
            delta = fid - last
            if 0 < delta <= 15:
                buf.append((delta << 4) | ct)
            else:
                buf.append(ct)
                self.varint(_zigzag(fid, 16))
            last = fid
            if tt != BOOL:
                self.value(tt, v)
        buf.append(0)   # STOP
        return self

    def list_header(self, et, n: int) -> None:
        if n < 15:
            self.buf.append((n << 4) | _CMP[et])
        else:
            self.buf.append(0xF0 | _CMP[et])
            self.varint(n)

    def value(self, tt, v) -> None:
        buf = self.buf
        if tt == STRING:
            b = _as_bytes(v)
            self.varint(len(b))
            buf += b
        elif tt in (I64, I32):
            self.varint(_zigzag(v, 64 if tt == I64 else 32))
        elif tt == STRUCT:
            self.struct(v)
        elif tt == LIST:
            et, items = v
            self.list_header(et, len(items))
            for it in items:
                self.value(et, it)
        elif tt == BOOL:
            buf.append(1 if v else 2)
        elif tt == DOUBLE:
            buf += _le_f64.pack(v)
        else:
            raise TypeError(f"unsupported thrift type {tt!r}")


WRITERS = {"binary": BinaryWriter, "compact": CompactWriter}


def encode_struct(fields, protocol: str) -> bytes:
    return bytes(WRITERS[protocol]().struct(fields).buf)
