// What the browser scripts share: their environment, expectations, the browser and a staff
// member's context with a client certificate.
import { chromium } from "playwright-core";

export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

export function expect(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`);
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
}

/// A context presenting ${who}_CERT/${who}_KEY to `base`.
export async function context(browser, base, who) {
  return browser.newContext({
    ignoreHTTPSErrors: true, // the test CA's server certificate; the client side is what matters
    clientCertificates: [{ origin: base, certPath: env(`${who}_CERT`), keyPath: env(`${who}_KEY`) }],
    locale: "nl-NL",
  });
}
