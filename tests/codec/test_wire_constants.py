"""The numbers compiled into the Cython codecs equal otelplug/codec/types.py."""
import pytest

from otelplug import codec
from otelplug.codec import types


@pytest.mark.usefixtures("cython_built")
def test_cython_constants_match_types_module():
    from otelplug._ext.definition_codec import wire_constants
    for name, value in wire_constants().items():
        assert getattr(types, name) == value, name
