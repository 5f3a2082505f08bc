// Sessions for real, in Chromium: with 3-second access tokens, the app goes on after its token
// expired (refreshed with the refresh token); after the session is revoked on the server
// (logged out elsewhere), the next call lands the app on the login page.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startWorld, until } from "./harness.mjs";

let world;

before(async () => {
  world = await startWorld({ env: { ACCESS_TOKEN_TTL: "3" } });
});

after(async () => {
  await world?.stop();
});

const stored = (page) => page.evaluate(() => JSON.parse(sessionStorage.getItem("videoflix.session")));

test("an expired access token is refreshed, and a revoked session lands on the login page", async () => {
  const { page, context, requests } = await world.page();
  try {
    await world.logIn(page);
    await page.waitForSelector("header .who");
    const first = await stored(page);
    const { exp } = JSON.parse(Buffer.from(first.accessToken.split(".")[1], "base64url").toString());
    // The server allows 5 s of clock skew (src/security/tokens.rs).
    await until("the access token to expire", () => Date.now() / 1000 > exp + 6, 15_000, 200);

    await page.click("header a:text-is('Admin')");
    await page.waitForSelector("form.stack input[name=title]");
    await page.click("header a:text-is('Browse')");
    await page.waitForSelector(".notice:text-is('No videos yet.')"); // the catalog's calls succeeded
    assert.ok(requests.some((r) => r.url.endsWith("/videoflix.v1.AuthService/RefreshToken")), "a refresh");
    const second = await stored(page);
    assert.notEqual(second.accessToken, first.accessToken);
    assert.notEqual(second.refreshToken, first.refreshToken);

    // Logged out elsewhere with the same session: the app's tokens stop working.
    const logout = await fetch(`${world.origin}/logout/`, {
      method: "POST",
      headers: { authorization: `Bearer ${second.accessToken}` },
    });
    assert.ok(logout.ok, `logout: ${logout.status}`);
    await page.click("header a:text-is('Admin')");
    await page.waitForSelector("form.stack input[name=title]");
    await page.click("header a:text-is('Browse')");
    await page.waitForURL(/\/app\/login$/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("videoflix.session")), null);
  } finally {
    await context.close();
  }
});
