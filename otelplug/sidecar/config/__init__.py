"""Loading and validating sidecar configuration in the Collector's shape."""
from .errors import ConfigError, ConfigErrors

__all__ = ["ConfigError", "ConfigErrors"]
