"""The contract: the change-event envelope, its codec, Extended JSON, signing and errors."""

from dualsync.schema.codec import build_fields, decode_fields, encode_event, format_time
from dualsync.schema.envelope import SCHEMA_VERSION, ChangeEvent, Op, WireEnvelope
from dualsync.schema.errors import EnvelopeError, SignatureError
from dualsync.schema.extjson import dumps_payload, loads_payload

__all__ = [
    "SCHEMA_VERSION",
    "ChangeEvent",
    "EnvelopeError",
    "Op",
    "SignatureError",
    "WireEnvelope",
    "build_fields",
    "decode_fields",
    "dumps_payload",
    "encode_event",
    "format_time",
    "loads_payload",
]
