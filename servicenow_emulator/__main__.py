"""``python -m servicenow_emulator``: the development/test emulator of ServiceNow.

Listens on AF_BIND_HOST:AF_EMULATOR_PORT (default 127.0.0.1:8090), stores data in
AF_EMULATOR_DB_PATH (default var/servicenow-emulator.sqlite3) and serves the table
SERVICENOW_TABLE (default u_af_henvendelse). Stops on SIGTERM/SIGINT.
"""
from __future__ import annotations

import asyncio
import signal
import sys

from af_core.logsetup import configure_logging
from af_core.settings import ConfigError, get_settings
from servicenow_emulator.server import EmulatorServer, credentials_from_settings


async def _serve() -> None:
    settings = get_settings()
    configure_logging(settings, "servicenow-emulator")
    server = EmulatorServer(
        settings.bind_host,
        settings.emulator_port,
        settings.emulator_db_path,
        [settings.servicenow_table],
        credentials_from_settings(settings),
    )
    await server.start()
    print(
        f"ServiceNow-emulator KUN til udvikling og test (ikke en rigtig ServiceNow): "
        f"lytter på {server.url}, tabel {settings.servicenow_table}, data i {settings.emulator_db_path}",
        flush=True,
    )
    if not settings.development:
        print("ADVARSEL: AF_MODE er production, men emulatoren er et udviklingsværktøj.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    print("ServiceNow-emulatoren er stoppet.", flush=True)


def main() -> int:
    try:
        asyncio.run(_serve())
    except ConfigError as exc:
        print(f"Konfigurationsfejl: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ServiceNow-emulatoren kunne ikke starte: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
