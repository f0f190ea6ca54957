"""The bundled transports of asyncpod: aiohttp (asyncio) and anyio (asyncio and trio)."""

from asyncpod_transports._factory import create_transport

__all__ = ["create_transport"]
