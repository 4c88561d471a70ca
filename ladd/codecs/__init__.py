"""Dense-label codecs (one file each) and their registry: parse_codec("topk:5,uint8")."""

from ladd.codecs import floats, int8, topk  # noqa: F401  (registers the codecs)
from ladd.codecs.base import (
    Codec,
    CodecError,
    Payload,
    build_codec,
    codec_names,
    parse_codec,
    register_codec,
)
from ladd.codecs.lazy import EncodedDense, EncodedTargets

DEFAULT_CODEC = "float32"  # today's default; a study (issue 26 part 7) is to pick the default

# Every codec once, with a few k of top-k: for tables ("ladd overhead --codec all", the
# sub-sampling page) and the study's part 7 (scripts/study.py measures each).
STANDARD_SPECS = (
    "float32",
    "float16",
    "bfloat16",
    "int8:affine",
    "int8:log",
    "topk:10,float16",
    "topk:5,float16",
    "topk:5,uint8",
    "topk:3,uint8",
    "topk:1,uint8",
)

__all__ = [
    "DEFAULT_CODEC",
    "STANDARD_SPECS",
    "Codec",
    "CodecError",
    "EncodedDense",
    "EncodedTargets",
    "Payload",
    "build_codec",
    "codec_names",
    "parse_codec",
    "register_codec",
]
