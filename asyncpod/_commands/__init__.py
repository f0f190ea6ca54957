"""The commands of the ``asyncpod`` command line, one module each."""
