"""The numbers compiled into the Cython codecs equal otelplug/codec/types.py."""
import pytest

from otelplug import codec
from otelplug.codec import types


@pytest.mark.skipif(codec.cython_impl is None, reason="Cython extension not built")
def test_cython_constants_match_types_module():
    from otelplug._ext.definition_codec import wire_constants
    for name, value in wire_constants().items():
        assert getattr(types, name) == value, name
