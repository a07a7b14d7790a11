// The staff web application in a real headless Chromium (Debian's), driven by Playwright,
// against a node that tests/integration/ui.rs started on free ports. Exits non-zero on the
// first failed expectation; writes a screenshot of every page into $SCREENSHOTS.
//
// Environment: UI_BASE (https://localhost:PORT), BEHEER_CERT/BEHEER_KEY and LOKET_CERT/LOKET_KEY
// (PEM files), SCREENSHOTS (a directory), CHROMIUM (path).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { context as contextAt, env, expect, launch } from "./common.mjs";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const base = env("UI_BASE");
const shots = env("SCREENSHOTS");
const context = (browser, who) => contextAt(browser, base, who);

/// axe-core on the current page: no serious or critical violations.
async function accessible(page, name) {
  // Evaluated through the debugging protocol: the page's CSP (rightly) forbids inline scripts.
  await page.evaluate(axeSource);
  const results = await page.evaluate(async () => await window.axe.run(document));
  const bad = results.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  expect(bad.length === 0, `${name}: axe found ${JSON.stringify(bad.map((v) => v.id))}`);
}

const browser = await launch();
try {
  // Loket enters a new Zorgaanbieder with two Gegevensdiensten; a bad endpoint is refused at
  // its field; fixed, the mutation is submitted.
  const loket = await (await context(browser, "LOKET")).newPage();
  await loket.goto(`${base}/ui/nieuw/zal`);
  await accessible(loket, "nieuwe mutatie");
  const field = (path) => loket.locator(`#${path.replace(/[^A-Za-z0-9]/g, "-")}`);
  const service = async (g, id, authorize) => {
    const base = `entry.gegevensdiensten[${g}]`;
    await field(`${base}.id`).fill(id);
    await field(`${base}.authorization_endpoint`).fill(authorize);
    await field(`${base}.token_endpoint`).fill("https://medmij.xisbridge.net/oauth/token");
    await field(`${base}.systeemrollen[0].code`).fill("LAB-1.0-LRB-FHIR");
    await field(`${base}.systeemrollen[0].resource_endpoint`).fill("https://medmij.xisbridge.net/fhir");
  };
  await loket.getByLabel("Zorgaanbiedernaam").fill("nieuwziekenhuis@medmij");
  await service(0, "4", "https://medmij.xisbridge.net/oauth/authorize");
  await loket.getByRole("button", { name: "Gegevensdienst toevoegen" }).click();
  await loket.waitForLoadState("load");
  expect((await field("entry.gegevensdiensten[0].id").inputValue()) === "4", "the first group is kept");
  await service(1, "5", "http://medmij.xisbridge.net/oauth/authorize");
  await field("on_behalf_of").fill("Ziekenhuis Nieuw");
  await field("reference").fill("MEDMIJ-300");
  await loket.getByRole("button", { name: "Controleer" }).click();
  await loket.waitForLoadState("load");
  const bad = field("entry.gegevensdiensten[1].authorization_endpoint");
  expect((await bad.getAttribute("aria-invalid")) === "true", "the bad endpoint is marked at its field");
  const message = await loket.locator(`#${await bad.getAttribute("aria-describedby")}`).textContent();
  expect(message.length > 0, "the refusal is announced next to the field");
  await loket.screenshot({ path: `${shots}/nieuwe-mutatie.png`, fullPage: true });
  await bad.fill("https://medmij.xisbridge.net/oauth/authorize");
  await Promise.all([loket.waitForURL(/melding=ingediend/), loket.getByRole("button", { name: "Indienen" }).click()]);
  const mutation = new URL(loket.url()).pathname.split("/").pop();

  // The submitter sees the mutation, but no approve button.
  expect(await loket.getByRole("heading", { name: `Mutatie ${mutation}` }).isVisible(), "loket sees the mutation");
  expect((await loket.getByRole("button", { name: /Goedkeuren/ }).count()) === 0, "the submitter has no approve button");
  expect(await loket.getByRole("button", { name: "Intrekken" }).isVisible(), "the submitter may withdraw");

  // Beheer: the queue has it at the top; the detail shows the diff; approve.
  const beheer = await (await context(browser, "BEHEER")).newPage();
  await beheer.goto(`${base}/ui?deelnemer=ziekenhuis+nieuw`);
  expect(await beheer.getByText("Aangemeld als").isVisible(), "the identity is shown");
  const first = beheer.locator("tbody tr").first();
  expect((await first.locator("a").first().textContent()).includes(`#${mutation}`), "the mutation tops the queue");
  await beheer.screenshot({ path: `${shots}/werkvoorraad.png`, fullPage: true });
  await accessible(beheer, "werkvoorraad");

  await first.locator("a").first().click();
  await beheer.waitForURL(`**/ui/mutaties/${mutation}`);
  const changed = beheer.locator("tr.gewijzigd");
  expect((await changed.count()) > 0, "the diff marks changed fields");
  await beheer.screenshot({ path: `${shots}/mutatie.png`, fullPage: true });
  await accessible(beheer, "mutatie");
  // At 200 % zoom (half the width in CSS pixels) the page still fits: only tables and XML
  // scroll sideways, inside their own boxes.
  const wide = beheer.viewportSize();
  await beheer.setViewportSize({ width: Math.round(wide.width / 2), height: wide.height });
  const overflow = await beheer.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const culprits = await beheer.evaluate(() =>
    [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .slice(0, 5)
      .map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().width)}`)
  );
  expect(overflow <= 0, `at 200 % zoom the page is ${overflow} px too wide: ${culprits}`);
  expect(await beheer.getByRole("button", { name: "Goedkeuren en publiceren" }).isVisible(), "the decision is reachable at 200 %");
  await beheer.screenshot({ path: `${shots}/mutatie-200.png`, fullPage: true });
  await beheer.setViewportSize(wide);

  // Keyboard only: tab to the approve button and press Enter.
  const approve = beheer.getByRole("button", { name: "Goedkeuren en publiceren" });
  await approve.focus();
  await Promise.all([
    beheer.waitForURL((url) => url.search.includes("melding") || url.pathname.endsWith("/goedkeuren")),
    beheer.keyboard.press("Enter"),
  ]);
  if (!beheer.url().includes("melding=goedgekeurd")) {
    throw new Error(`approval did not go through: ${beheer.url()}: ${await beheer.locator("main").textContent()}`);
  }
  expect(await beheer.getByRole("status").textContent() === "Goedgekeurd en gepubliceerd.", "approval confirmed");
  await beheer.screenshot({ path: `${shots}/goedgekeurd.png`, fullPage: true });

  // Lijsten: the new version's diff with the one before names the new Zorgaanbieder; the
  // entry search finds it; the next version preview has nothing pending.
  await beheer.goto(`${base}/ui/lijsten`);
  await accessible(beheer, "lijsten");
  await beheer.getByRole("link", { name: "zal" }).click();
  await beheer.getByRole("link", { name: "met de vorige" }).first().click();
  expect(await beheer.getByRole("heading", { name: "Toegevoegd: nieuwziekenhuis@medmij" }).isVisible(), "the version diff");
  await beheer.screenshot({ path: `${shots}/lijst.png`, fullPage: true });
  await accessible(beheer, "lijst");
  // Any two versions: the oldest ZAL version against the newest names the new entry too.
  const newest = (await beheer.locator("table").last().locator("tbody tr td").first().textContent()).trim();
  await beheer.getByLabel("Vergelijk versie").fill(String(Number(newest) - 1));
  await beheer.getByLabel("met versie").fill(newest);
  await beheer.getByRole("button", { name: "Vergelijk" }).click();
  await beheer.waitForLoadState("load");
  expect(await beheer.getByRole("heading", { name: `Van ${Number(newest) - 1} naar ${newest}` }).isVisible(), "two chosen versions compared");
  await beheer.getByLabel("Sleutel bevat").fill("nieuwziek");
  await beheer.getByRole("button", { name: "Zoek" }).click();
  await beheer.waitForLoadState("load");
  expect(await beheer.getByText("nieuwziekenhuis@medmij — wijzigen").isVisible(), "the entry search");
  expect(await beheer.getByText("0 toegevoegd, 0 gewijzigd, 0 verwijderd.").first().isVisible(), "nothing pending");

  // The audit log (beheer only) shows the approval; loket is refused.
  await beheer.goto(`${base}/ui/audit?action=POST%20%2Fui`);
  expect(await beheer.getByRole("cell", { name: "POST /ui/mutaties/{id}/goedkeuren" }).first().isVisible(), "the approval is audited");
  await beheer.screenshot({ path: `${shots}/audit.png`, fullPage: true });
  await accessible(beheer, "audit");
  const refused = await loket.goto(`${base}/ui/audit`);
  expect(refused.status() === 403, "loket may not read the audit log");
  console.log("browser flow passed");
} finally {
  await browser.close();
}
