"""The pytest plugin of asyncpod (entry point ``asyncpod``)."""
