// The staff web application in a real headless Chromium (Debian's), driven by Playwright,
// against a node that tests/integration/ui.rs started on free ports. Exits non-zero on the
// first failed expectation; writes a screenshot of every page into $SCREENSHOTS.
//
// Environment: UI_BASE (https://localhost:PORT), BEHEER_CERT/BEHEER_KEY and LOKET_CERT/LOKET_KEY
// (PEM files), MUTATION (the id loket submitted), SCREENSHOTS (a directory), CHROMIUM (path).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("UI_BASE");
const mutation = env("MUTATION");
const shots = env("SCREENSHOTS");

function expect(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`);
}

async function context(browser, who) {
  return browser.newContext({
    ignoreHTTPSErrors: true, // the test CA's server certificate; the client side is what matters
    clientCertificates: [{ origin: base, certPath: env(`${who}_CERT`), keyPath: env(`${who}_KEY`) }],
    locale: "nl-NL",
  });
}

/// axe-core on the current page: no serious or critical violations.
async function accessible(page, name) {
  // Evaluated through the debugging protocol: the page's CSP (rightly) forbids inline scripts.
  await page.evaluate(axeSource);
  const results = await page.evaluate(async () => await window.axe.run(document));
  const bad = results.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  expect(bad.length === 0, `${name}: axe found ${JSON.stringify(bad.map((v) => v.id))}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  // Loket, the submitter: sees the mutation, but no approve button.
  const loket = await (await context(browser, "LOKET")).newPage();
  await loket.goto(`${base}/ui/mutaties/${mutation}`);
  expect(await loket.getByRole("heading", { name: `Mutatie ${mutation}` }).isVisible(), "loket sees the mutation");
  expect((await loket.getByRole("button", { name: /Goedkeuren/ }).count()) === 0, "the submitter has no approve button");
  expect(await loket.getByRole("button", { name: "Intrekken" }).isVisible(), "the submitter may withdraw");

  // Beheer: the queue has it at the top; the detail shows the diff; approve.
  const beheer = await (await context(browser, "BEHEER")).newPage();
  await beheer.goto(`${base}/ui`);
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
  console.log("browser flow passed");
} finally {
  await browser.close();
}
