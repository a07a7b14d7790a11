// A form opened on one replica and posted to another (issue 24, item 4), in a real headless
// Chromium. UI_BASE is a TLS-passing proxy that tests/integration/ui.rs points at one replica;
// after the page has loaded, SWITCH_URL points it at the other and closes the connections
// open to the first, so the form's post reaches the second replica. The CSRF token in the
// form was made by the first.
//
// Environment: UI_BASE, SWITCH_URL, MUTATION (an id), BEHEER_CERT/BEHEER_KEY (a beheer
// identity that did not submit the mutation), CHROMIUM (path).
import { context, env, expect, launch } from "./common.mjs";

const base = env("UI_BASE");
const browser = await launch();
try {
  const beheer = await (await context(browser, base, "BEHEER")).newPage();
  await beheer.goto(`${base}/ui/mutaties/${env("MUTATION")}`);
  const approve = beheer.getByRole("button", { name: "Goedkeuren en publiceren" });
  expect(await approve.isVisible(), "the form is on the page");
  const switched = await fetch(env("SWITCH_URL"));
  expect(switched.ok, `the proxy switched: ${switched.status}`);
  await Promise.all([beheer.waitForURL((url) => url.search.includes("melding") || url.pathname.endsWith("/goedkeuren")), approve.click()]);
  if (!beheer.url().includes("melding=goedgekeurd")) {
    throw new Error(`refused by the other replica: ${beheer.url()}: ${await beheer.locator("main").textContent()}`);
  }
  console.log("the other replica accepted the form");
} finally {
  await browser.close();
}
