"""Running the emulator: as a process (``python -m servicenow_emulator``) or in a
background thread (tests), with the ability to close its listening socket for a
while (fault injection ``down_seconds``)."""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import List, Optional

from aiohttp import web

from servicenow_emulator.app import Credentials, Emulator, create_app
from servicenow_emulator.store import Store

log = logging.getLogger("servicenow_emulator")


def credentials_from_settings(settings) -> Credentials:
    """The credentials the emulator accepts.

    Development: the configured ones, else the documented development defaults. Production
    (the emulator is then a stand-in in a production-like set-up): only the configured ones,
    never the development defaults. A method that is not configured (Basic or OAuth) gets an
    unguessable value nobody knows, so an empty user name or client id cannot log in.
    """
    import secrets

    from af_core import settings as settings_module
    from af_core.settings import ConfigError

    basic = (settings.servicenow_username, settings.servicenow_password)
    oauth = (settings.servicenow_client_id, settings.servicenow_client_secret)
    if settings.development:
        return Credentials(
            username=basic[0] or settings_module.DEV_SERVICENOW_USERNAME,
            password=basic[1] or settings_module.DEV_SERVICENOW_PASSWORD,
            client_id=oauth[0] or settings_module.DEV_SERVICENOW_CLIENT_ID,
            client_secret=oauth[1] or settings_module.DEV_SERVICENOW_CLIENT_SECRET,
        )
    if not all(basic) and not all(oauth):
        raise ConfigError(
            "ServiceNow-emulatoren bruger aldrig udviklingslogin i drift. Sæt SERVICENOW_USERNAME og "
            "SERVICENOW_PASSWORD eller SERVICENOW_CLIENT_ID og SERVICENOW_CLIENT_SECRET."
        )

    def unusable() -> str:
        return "ikke-sat-" + secrets.token_urlsafe(32)

    return Credentials(
        username=basic[0] if all(basic) else unusable(),
        password=basic[1] if all(basic) else unusable(),
        client_id=oauth[0] if all(oauth) else unusable(),
        client_secret=oauth[1] if all(oauth) else unusable(),
    )


class EmulatorServer:
    def __init__(self, host: str, port: int, db_path: Path, tables: List[str], credentials: Credentials,
                 seed: Optional[int] = None):
        self.host = host
        self.port = port
        self.store = Store(db_path)
        self.emulator = Emulator(self.store, tables, credentials, seed=seed)
        self.emulator.control.go_down = self.go_down
        self.app = create_app(self.emulator)
        self.runner: Optional[web.AppRunner] = None
        self.site: Optional[web.TCPSite] = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self.runner.setup()
        await self._open()

    async def _open(self) -> None:
        self.site = web.TCPSite(self.runner, self.host, self.port, reuse_address=True)
        await self.site.start()
        if self.port == 0:
            self.port = self.site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def go_down(self, seconds: float) -> None:
        """Close the listening socket (connections are refused) and reopen it later."""
        control = self.emulator.control
        control.down_until = max(control.down_until, time.monotonic() + seconds)
        if self.site is not None:
            await self.site.stop()
            self.site = None
        log.warning("Emulatoren afviser forbindelser i %.1f sekunder", seconds)
        while time.monotonic() < control.down_until:
            await asyncio.sleep(max(control.down_until - time.monotonic(), 0.01))
        if self.site is None and self.runner is not None:
            await self._open()
            log.warning("Emulatoren tager imod forbindelser igen")

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        self.store.close()


class ThreadedEmulator:
    """The emulator on its own event loop in a daemon thread (for tests)."""

    def __init__(self, db_path: Path, table: str, credentials: Credentials, host: str = "127.0.0.1",
                 port: int = 0, seed: Optional[int] = None):
        self._args = (host, port, db_path, [table], credentials, seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="servicenow-emulator", daemon=True)
        self._ready = threading.Event()
        self._error: Optional[BaseException] = None
        self.server: Optional[EmulatorServer] = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.server = EmulatorServer(*self._args)
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # surfaced in start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.stop())
        pending = [task for task in asyncio.all_tasks(self._loop) if not task.done()]
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def start(self) -> "ThreadedEmulator":
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def emulator(self) -> Emulator:
        assert self.server is not None
        return self.server.emulator

    def call(self, func, *args):
        """Run ``func(*args)`` on the emulator's loop (thread-safe access to its state)."""
        async def wrapper():
            return func(*args)

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
