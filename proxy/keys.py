"""Typed keys for what an application holds: nothing is global, so apps never share state."""

from __future__ import annotations

import asyncio

from aiohttp import web

from proxy.cassette import Cassette
from proxy.config import Config
from proxy.forward import Upstream
from proxy.logs import Logger
from proxy.named import NamedCassettes

CONFIG = web.AppKey("config", Config)
LOG = web.AppKey("log", Logger)
CASSETTE = web.AppKey("cassette", Cassette)
UPSTREAM = web.AppKey("upstream", Upstream)
NAMED = web.AppKey("named", NamedCassettes)
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)
