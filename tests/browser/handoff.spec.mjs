// The supporter console and the leader's page together in headless Chromium
// (Debian's /usr/bin/chromium via playwright-core; no browser downloads).
//
//   node tests/browser/handoff.spec.mjs      (run by tests/test_handoff.py)
//
// Environment: AF_TEST_WEB_URL, AF_TEST_SCREENSHOT_DIR, AF_TEST_CHROMIUM,
// AF_TEST_SUPPORTER, AF_TEST_SUPPORTER_PASSWORD (the development demo supporter).
// The supporter logs in, a demo leader asks for a person, the supporter takes
// over and writes; the leader's chat shows the message from a named person.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const webUrl = process.env.AF_TEST_WEB_URL;
const shots = process.env.AF_TEST_SCREENSHOT_DIR || "test-output/screenshots";
const executablePath = process.env.AF_TEST_CHROMIUM || "/usr/bin/chromium";
const username = process.env.AF_TEST_SUPPORTER;
const password = process.env.AF_TEST_SUPPORTER_PASSWORD;
const TIMEOUT = 45_000;
assert.ok(webUrl && username && password, "AF_TEST_WEB_URL / AF_TEST_SUPPORTER(_PASSWORD) mangler");
fs.mkdirSync(shots, { recursive: true });

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "af-chromium-handoff-"));
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1280, height: 860 },
  locale: "da-DK",
});
browser.setDefaultTimeout(TIMEOUT);

// Two tabs share the persistent context: cookies are path-scoped (/support), the
// leader's chat state lives in the tab's sessionStorage.
const console_ = browser.pages()[0] || (await browser.newPage());
const leader = await browser.newPage();
const errors = [];
for (const p of [console_, leader]) p.on("pageerror", (e) => errors.push(String(e)));

let step = 0;
async function check(name, fn) {
  step += 1;
  try {
    await fn();
    console.log(`ok ${step} - ${name}`);
  } catch (err) {
    console.log(`not ok ${step} - ${name}`);
    await console_.screenshot({ path: path.join(shots, `handoff-failure-${step}-konsol.png`) }).catch(() => {});
    await leader.screenshot({ path: path.join(shots, `handoff-failure-${step}-leder.png`) }).catch(() => {});
    throw err;
  }
}

const message = "Hej Jonas, det er Sofie fra AF. Jeg hjælper dig med barslen.";
try {
  await check("konsollen kræver login og sender til login-siden", async () => {
    await console_.goto(`${webUrl}/support`);
    assert.match(console_.url(), /\/support\/login$/);
    assert.equal(await console_.getAttribute("html", "lang"), "da");
  });

  await check("medarbejderen logger ind med brugernavn og adgangskode", async () => {
    await console_.getByLabel("Brugernavn").fill(username);
    await console_.getByLabel("Adgangskode").fill(password);
    await console_.getByRole("button", { name: "Log ind" }).click();
    await console_.getByRole("heading", { level: 2, name: "Ledere der venter" }).waitFor();
  });

  await check("lederen beder om en medarbejder og kommer i kø", async () => {
    await leader.goto(`${webUrl}/`);
    await leader.getByLabel("Demo-leder").selectOption("1");
    await leader.getByRole("button", { name: "Start chatten som denne leder" }).click();
    await leader.locator(".afchat-bot .afchat-bubble", { hasText: "Hej Jonas" }).first().waitFor();
    await leader.getByRole("button", { name: "Tal med en medarbejder" }).first().click();
    await leader.locator(".afchat-bot .afchat-bubble", { hasText: /nummer \d+ i køen/ }).waitFor();
  });

  await check("konsollen viser lederen i køen med navn og institution", async () => {
    const item = console_.getByRole("button", { name: /Jonas Nielsen, Børnehuset Mælkebøtten/ }).last();
    await item.waitFor();
    await item.click();
    await console_.getByRole("heading", { level: 2, name: "Samtale med Jonas Nielsen" }).waitFor();
    await console_.locator("#transcript .entry.bot", { hasText: "i køen" }).last().waitFor();
  });

  await check("medarbejderen overtager og skriver til lederen", async () => {
    await console_.getByRole("button", { name: "Overtag samtalen" }).click();
    await leader.locator(".afchat-bot .afchat-bubble", { hasText: "Nu skriver du med Sofie fra AF" }).waitFor();
    const box = console_.getByLabel("Din besked til lederen");
    await box.waitFor();
    await box.fill(message);
    await console_.getByRole("button", { name: "Send besked" }).click();
    await console_.locator("#transcript .entry.supporter", { hasText: message }).waitFor();
    await console_.screenshot({ path: path.join(shots, "handoff-konsol.png"), fullPage: true });
  });

  await check("lederens side viser beskeden fra en navngiven medarbejder", async () => {
    const item = leader.locator(".afchat-person", { hasText: message });
    await item.waitFor();
    assert.equal(await item.locator(".afchat-author").innerText(), "Sofie fra AF:");
    assert.equal(await item.locator(".afchat-bubble").innerText(), message);
    await leader.screenshot({ path: path.join(shots, "handoff-leder.png") });
  });

  await check("lederens svar ses i konsollen, og samtalen gives tilbage til assistenten", async () => {
    await leader.getByRole("textbox", { name: "Din besked" }).fill("Tak, <b>det</b> lyder godt");
    await leader.keyboard.press("Enter");
    await console_.locator("#transcript .entry.leader", { hasText: "Tak, <b>det</b> lyder godt" }).waitFor();
    assert.equal(await console_.locator("#transcript b").count(), 0, "lederens tekst vises som tekst");
    await console_.getByRole("button", { name: "Giv samtalen tilbage til AF-assistenten" }).click();
    await leader.locator(".afchat-bot .afchat-bubble", { hasText: "AF-assistenten, igen" }).waitFor();
  });

  await check("ingen fejl i siderne", async () => {
    assert.deepEqual(errors, []);
  });

  await check("log ud", async () => {
    await console_.getByRole("button", { name: "Log ud" }).click();
    await console_.waitForURL(/\/support\/login$/);
  });
} finally {
  await browser.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
