// End-to-end test of the leader's page in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core; no browser downloads).
//
//   node tests/browser/chat.spec.mjs            (run by tests/test_browser.py)
//
// Environment: AF_TEST_WEB_URL (the page), AF_TEST_SCREENSHOT_DIR,
// AF_TEST_CHROMIUM (default /usr/bin/chromium), AF_TEST_FORM_QUESTION.
// Prints one line per check and exits non-zero on the first failure.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const webUrl = process.env.AF_TEST_WEB_URL;
const shots = process.env.AF_TEST_SCREENSHOT_DIR || "test-output/screenshots";
const executablePath = process.env.AF_TEST_CHROMIUM || "/usr/bin/chromium";
const formQuestion = process.env.AF_TEST_FORM_QUESTION || "hvor finder jeg blanketten til ansættelse af en ny medarbejder";
const TIMEOUT = 45_000;
assert.ok(webUrl, "AF_TEST_WEB_URL mangler");
fs.mkdirSync(shots, { recursive: true });

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "af-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1280, height: 800 },
  locale: "da-DK",
});
context.setDefaultTimeout(TIMEOUT);

const requests = [];
const consoleErrors = [];
context.on("request", (r) => requests.push(r.url()));
const page = context.pages()[0] || (await context.newPage());
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push(String(e)));

const botMessages = page.locator(".afchat-bot .afchat-bubble");
const userMessages = page.locator(".afchat-user .afchat-bubble");
let step = 0;
async function check(name, fn) {
  step += 1;
  try {
    await fn();
    console.log(`ok ${step} - ${name}`);
  } catch (err) {
    console.log(`not ok ${step} - ${name}`);
    await page.screenshot({ path: path.join(shots, `failure-${step}.png`) }).catch(() => {});
    throw err;
  }
}
async function nextBotMessage(before) {
  await page.waitForFunction((n) => document.querySelectorAll(".afchat-bot").length > n, before);
}

try {
  await check("siden åbner som en AF-side på dansk", async () => {
    await page.goto(webUrl);
    assert.equal(await page.getAttribute("html", "lang"), "da");
    await page.getByRole("heading", { level: 1, name: "Administrative fællesskaber (AF)" }).waitFor();
  });

  await check("vælg en demo-leder og få en personlig hilsen med knapper", async () => {
    await page.getByLabel("Demo-leder").selectOption("0");
    await page.getByRole("button", { name: "Start chatten som denne leder" }).click();
    await botMessages.first().waitFor();
    assert.match(await botMessages.first().innerText(), /Hej Mette/);
    await page.getByText("Du chatter som Mette Hansen (Valby Skole)").waitFor();
    // Focus moved into the chat: the message field has an accessible name.
    assert.equal(await page.evaluate(() => document.activeElement.id), "afchat-input");
    await page.getByRole("textbox", { name: "Din besked" }).waitFor();
    await page.getByRole("button", { name: "Find en blanket" }).waitFor();
    await page.screenshot({ path: path.join(shots, "01-hilsen.png") });
  });

  await check("et klik på en knap sender den og giver et svar", async () => {
    const before = await page.locator(".afchat-bot").count();
    await page.getByRole("button", { name: "Find en blanket" }).click();
    await nextBotMessage(before);
    assert.equal(await userMessages.last().innerText(), "Find en blanket");
    assert.equal(await page.locator(".afchat-bot").first().locator("button").count(), 0, "brugte knapper fjernes");
    assert.equal(await page.evaluate(() => document.activeElement.id), "afchat-input", "fokus tilbage i feltet");
  });

  await check("spørg efter en blanket og se dens link", async () => {
    const before = await page.locator(".afchat-bot").count();
    await page.getByRole("textbox", { name: "Din besked" }).fill(formQuestion);
    await page.keyboard.press("Enter");
    await nextBotMessage(before);
    const link = page.locator(".afchat-bot a[href*='/blanketter/']").first();
    await link.waitFor();
    assert.match(await link.getAttribute("href"), /^https:\/\//);
    assert.equal(await link.getAttribute("rel"), "noopener noreferrer");
    await link.scrollIntoViewIfNeeded();
    await page.waitForTimeout(500);
    await page.screenshot({ path: path.join(shots, "02-blanket.png") });
  });

  await check("HTML og script i en besked vises som tekst", async () => {
    const before = await page.locator(".afchat-bot").count();
    const hostile = '<img src=x onerror="window.__afXss=1"><b>fed</b>';
    await page.getByRole("textbox", { name: "Din besked" }).fill(hostile);
    await page.keyboard.press("Enter");
    await nextBotMessage(before);
    assert.equal(await userMessages.last().innerText(), hostile);
    assert.equal(await page.locator(".afchat-log img, .afchat-log b").count(), 0);
    assert.equal(await page.evaluate(() => window.__afXss), undefined);
  });

  await check("et CPR-nummer i en sjælden form når hverken siden eller sessionStorage", async () => {
    const before = await page.locator(".afchat-bot").count();
    // dotted groups, a full-width hyphen and a zero-width space inside (issue 14)
    await page.getByRole("textbox", { name: "Din besked" }).fill("min ansatte 01.02.03\uff0d12\u200b34 er syg");
    await page.keyboard.press("Enter");
    await nextBotMessage(before);
    assert.match(await userMessages.last().innerText(), /\[CPR-nummer fjernet\]/);
    const stored = await page.evaluate(() => sessionStorage.getItem("afChat.v1"));
    assert.ok(!stored.includes("01.02.03"), "datodelen er ikke gemt");
    assert.doesNotMatch(stored.normalize("NFKC"), /12\u200b?34 er syg/, "løbenummeret er ikke gemt");
  });

  let sessionId;
  await check("genindlæs siden: samtalen fortsætter", async () => {
    sessionId = await page.evaluate(() => JSON.parse(sessionStorage.getItem("afChat.v1")).sessionId);
    const shownBefore = await page.locator(".afchat-msg").count();
    await page.reload();
    await page.getByText("Du chatter som Mette Hansen (Valby Skole)").waitFor();
    assert.equal(await page.locator(".afchat-msg").count(), shownBefore, "samtalen vises stadig");
    assert.match(await botMessages.first().innerText(), /Hej Mette/);
    const before = await page.locator(".afchat-bot").count();
    await page.getByRole("textbox", { name: "Din besked" }).fill("tak for hjælpen");
    await page.keyboard.press("Enter");
    await nextBotMessage(before);
    const after = await page.evaluate(() => JSON.parse(sessionStorage.getItem("afChat.v1")).sessionId);
    assert.equal(after, sessionId, "samme samtale efter genindlæsning");
    assert.doesNotMatch(await botMessages.nth(before).innerText(), /^Hej Mette/, "ingen ny hilsen: samtalen fortsatte");
    await page.screenshot({ path: path.join(shots, "03-efter-genindlaesning.png") });
  });

  await check("tastatur: Escape lukker chatten og fokus går til knappen, Enter åbner igen", async () => {
    await page.getByRole("textbox", { name: "Din besked" }).focus();
    await page.keyboard.press("Escape");
    assert.equal(await page.locator("#afchat-panel").isHidden(), true);
    const launcher = page.getByRole("button", { name: "Chat med AF-assistenten" });
    assert.equal(await launcher.evaluate((el) => el === document.activeElement), true);
    assert.equal(await launcher.getAttribute("aria-expanded"), "false");
    await page.keyboard.press("Enter");
    assert.equal(await page.locator("#afchat-panel").isVisible(), true);
    assert.equal(await page.evaluate(() => document.activeElement.id), "afchat-input");
  });

  await check("alle knapper og felter har et navn, samtalen er en live-region", async () => {
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll("button, input, select, a[href]")]
        .filter((el) => !(el.getAttribute("aria-label") || el.textContent.trim() || (el.labels && el.labels.length)))
        .map((el) => el.outerHTML));
    assert.deepEqual(unnamed, []);
    assert.equal(await page.locator("[role=log][aria-live=polite]").count(), 1);
  });

  await check("netværksloggen har kun forespørgsler til egen maskine", async () => {
    const foreign = requests.filter((u) => {
      if (u.startsWith("data:") || u.startsWith("blob:")) return false;
      const host = new URL(u).hostname;
      return !(host === "127.0.0.1" || host === "localhost" || host === "[::1]");
    });
    assert.deepEqual(foreign, []);
    assert.ok(requests.some((u) => u.includes("/socket.io/")), "chatten talte med Rasa-serveren");
    assert.deepEqual(consoleErrors.filter((e) => !/favicon/.test(e)), []);
  });
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`alle ${step} tjek bestået`);
