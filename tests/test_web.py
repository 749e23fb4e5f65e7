"""The leader's page server (web/): page, demo tokens only in development, headers."""
from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from af_core.identity import verify_token
from af_core.profile import get_profile
from af_core.settings import load_settings
from tests.production_env import production_env
from web.app import create_app


def run(settings, scenario):
    async def main():
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        try:
            return await scenario(client)
        finally:
            await client.close()

    return asyncio.run(main())


DEV = load_settings({"AF_MODE": "development", "AF_RASA_PORT": "5999"})
PROD = load_settings(production_env(SERVICENOW_URL="https://sn.example", SERVICENOW_CLIENT_ID="af-test-klient",
                                    SERVICENOW_CLIENT_SECRET="test-klienthemmelighed-0123456789"))


def test_development_page_offers_demo_leaders_and_signs_their_token():
    async def scenario(client):
        page = await (await client.get("/")).text()
        r = await client.post("/dev/token", json={"leader": 1})
        return page, r.status, await r.json()

    page, status, body = run(DEV, scenario)
    leader = get_profile().demo_leaders[1]
    assert 'lang="da"' in page and "Demo-leder" in page and leader["name"] in page
    assert 'data-socket-url="http://127.0.0.1:5999"' in page
    assert status == 200
    identity = verify_token(body["token"], DEV)
    assert identity.email == leader["email"]
    assert identity.unit == get_profile().unit_for_institution(leader["institution"])["id"]


def test_dev_token_only_for_demo_leaders():
    async def scenario(client):
        return [
            (await client.post("/dev/token", json=body)).status
            for body in ({"leader": 99}, {"leader": -1}, {"leader": "x"}, {"name": "Hacker", "email": "h@evil.dk"})
        ]

    assert run(DEV, scenario) == [400, 400, 400, 400]


def test_production_has_no_demo_login():
    async def scenario(client):
        page = await (await client.get("/")).text()
        return page, (await client.post("/dev/token", json={"leader": 0})).status

    page, status = run(PROD, scenario)
    assert "Demo-leder" not in page and "dev-leader.js" not in page
    assert status in (404, 405)


def test_page_allows_no_outside_resources():
    async def scenario(client):
        r = await client.get("/")
        js = await client.get("/static/af-chat.js")
        return r.headers["Content-Security-Policy"], await r.text(), js.status, await js.text()

    csp, page, js_status, js = run(DEV, scenario)
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "connect-src 'self' http://127.0.0.1:5999 ws://127.0.0.1:5999" in csp
    assert "https://" not in page.split("<main")[0], "intet hentes udefra i <head>"
    assert js_status == 200 and "innerHTML" not in js.replace("never innerHTML", "")


def test_other_modules_can_add_routes(monkeypatch):
    import sys
    import types

    module = types.ModuleType("web.support")

    async def hello(_):
        return web.Response(text="konsol")

    module.setup = lambda app, settings: app.router.add_get("/support", hello)
    monkeypatch.setitem(sys.modules, "web.support", module)

    async def scenario(client):
        return await (await client.get("/support")).text()

    assert run(DEV, scenario) == "konsol"


def test_the_widget_speaks_with_the_domain_wording_a_trainer_can_change(tmp_path, monkeypatch):
    """Every sentence of the chat window (af-chat.js's T) is a response in domain/channel.yml; the
    web server puts them into the file it sends, and a trainer's change is there at the next load."""
    import re
    import shutil

    from af_core import domain_texts
    from web import leader_page

    source = leader_page.WIDGET_FILE.read_text(encoding="utf-8")
    keys = set(re.findall(r"^    (\w+): \"", source.split("var T = {", 1)[1].split("};", 1)[0], re.M))
    assert keys - {"masked"} == set(leader_page.WIDGET_TEXTS), "a widget text without a domain response"
    folder = tmp_path / "domain"
    shutil.copytree(domain_texts.DOMAIN_DIR, folder)
    monkeypatch.setattr(domain_texts, "DOMAIN_DIR", folder)

    async def scenario(client):
        return await (await client.get("/static/af-chat.js")).text()

    js = run(DEV, scenario)
    assert leader_page.WIDGET_MARKER not in js and '"notSent": "Beskeden er ikke sendt' in js
    path = folder / "channel.yml"
    path.write_text(path.read_text(encoding="utf-8").replace('"Skriv din besked…"', '"Hvad vil du spørge om?"'),
                    encoding="utf-8")
    assert '"placeholder": "Hvad vil du spørge om?"' in run(DEV, scenario)
