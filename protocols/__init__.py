# Built-in protocol plugins, one package each, registered under the entry-point
# group `netsvc.protocols` in pyproject.toml.
