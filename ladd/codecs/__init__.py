"""Dense-label codecs (one file each) and their registry: parse_codec("topk:5,uint8").

DEFAULT_CODEC is the one default of every path that stores dense labels (`ladd augment`, the
Python `augment`, the pipeline):

Examples:
    >>> from ladd import DEFAULT_CODEC, parse_codec
    >>> parse_codec(DEFAULT_CODEC).spec == parse_codec(DEFAULT_CODEC).spec  # a valid spec
    True
"""

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

# The default of the label-augmented files `ladd augment` writes, picked by the CIFAR-10 study's
# part 7 (docs/results.md) with ladd.codecs.choice's paired rule: the fewest label bytes per
# image whose accuracy difference from float32, paired by seed, has a 95 % t-interval reaching 0
# (pooled over both distillers and on each). CPU profile, IPC 10, N 5, 3 seeds a distiller:
# -0.26 points pooled, interval [-0.55, +0.03] (DM -0.40, random real -0.13); 250 label bytes
# per image against float32's 1,000 (zip overhead 5 % against 30-31 %). top-3 uint8 (150 bytes, the
# default before the paired test) is -0.83 points, interval [-1.25, -0.40]: passed over.
DEFAULT_CODEC = "topk:5,uint8"

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
