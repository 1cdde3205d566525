"""The ``otelplug`` command line: one module per subcommand group."""
