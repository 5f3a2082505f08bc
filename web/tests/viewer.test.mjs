// A viewer's story in Chromium: sign up, activate from the mailed link, log in, browse, play
// over HLS (a level loads, time advances, each quality fetches its own segments, the seek bar
// previews frames), leave (continue watching shows it; a favorite joins my list) and resume at
// the saved position; a session survives a reload, refreshes a rejected access token (the
// catalog's parallel calls share one refresh) and, with both tokens rejected, lands on the
// login page; a forgotten password is reset from the mail, and a guest logs in and out. The
// API goes over gRPC-web only, and nothing leaves the server's origin.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, checkNetwork, makeClip, startWorld, until } from "./harness.mjs";

let world;
let videoId;

/** Uploads a clip over REST as the admin (the fixture, not the story) and waits until it is ready. */
async function seedVideo(title) {
  const login = await fetch(`${world.origin}/login/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(world.admin),
  }).then((r) => r.json());
  const form = new FormData();
  for (const [k, v] of Object.entries({ title, description: "Colour bars and a tone.", genre: "documentary", language: "english" }))
    form.append(k, v);
  const clip = makeClip(world.dir, "viewer.mp4", { seconds: 12 });
  const { readFileSync } = await import("node:fs");
  form.append("video_file", new Blob([readFileSync(clip)], { type: "video/mp4" }), "viewer.mp4");
  const headers = { authorization: `Bearer ${login.token}` };
  const created = await fetch(`${world.origin}/api/videos/`, { method: "POST", headers, body: form }).then((r) => r.json());
  await until("the seeded video to be ready", async () => {
    const v = await fetch(`${world.origin}/api/videos/${created.id}/`, { headers }).then((r) => r.json());
    if (v.status === "failed") throw new Error(`transcode failed: ${v.status_reason}`);
    return v.status === "ready";
  }, 90_000, 250);
  return created.id;
}

before(async () => {
  world = await startWorld();
  videoId = await seedVideo("Test pattern");
});

after(async () => {
  await world?.stop();
});

const playerTime = (page) => page.evaluate(() => document.querySelector("video")?.currentTime ?? 0);

/** Segment URLs (of the `level`'s playlist folder) fetched since `from`. */
async function segmentsOf(page, requests, level, from) {
  const playlist = await page.evaluate((i) => { const l = window.videoflixPlayer.hls.levels[i]; return l.uri || [l.url].flat()[0]; }, level);
  const folder = playlist.slice(0, playlist.lastIndexOf("/") + 1);
  return requests.slice(from).filter((r) => r.url.startsWith(folder) && !r.url.endsWith(".m3u8"));
}

test("a new viewer signs up, activates, logs in, watches over HLS and resumes", async () => {
  const { page, context, requests } = await world.page();
  try {
    const email = "viewer@example.com";
    const password = "Viewer-pass-1234";
    await page.goto(`${world.origin}/app/`);
    await page.waitForURL(/\/app\/login$/);
    await page.click(`a[href="/app/signup"]`);
    await page.fill("input[name=email]", email);
    await page.fill("input[name=password]", password);
    await page.fill("input[name=confirm]", password);
    await page.click("button[type=submit]");
    await page.waitForSelector(".notice:not(.error):has-text('activ')");

    const link = await world.smtp.link(email, "activate-account");
    assert.ok(link.startsWith(`${world.origin}/app/activate-account/`), link);
    await page.goto(link);
    await page.waitForSelector(".notice.activated");

    await page.click(`a[href="/app/login"]`);
    await page.fill("input[name=email]", email);
    await page.fill("input[name=password]", password);
    await page.check("input[name=remember]");
    await page.click("button[type=submit]");
    const tile = `.row.newest .tile[data-video-id="${videoId}"]`;
    await page.waitForSelector(tile);
    await page.waitForSelector(`${tile} img`);

    // The session survives a reload.
    await page.reload();
    await page.waitForSelector(tile);

    // Search (debounced) replaces the rows with its results, and clearing it brings them back.
    await page.fill("input[type=search]", "pattern");
    await page.waitForSelector(`.row.results .tile[data-video-id="${videoId}"]`);
    await page.fill("input[type=search]", "no such title");
    await page.waitForSelector(".notice:has-text('Nothing matches')");
    await page.fill("input[type=search]", "");
    await page.waitForSelector(tile);

    // Play: hls.js loads a level and the time advances.
    await page.click(tile);
    await page.waitForFunction(() => window.videoflixPlayer?.loadedLevels.length > 0);
    const levels = await page.evaluate(() => window.videoflixPlayer.hls.levels.map((l) => l.height));
    assert.ok(levels.length >= 2, `renditions: ${levels}`);
    await page.click(".controls .play");
    await until("playback to advance", async () => (await playerTime(page)) > 1, 20_000);

    // Each quality fetches its own segments, and playback goes on after each switch.
    for (const level of [0, levels.length - 1, 0]) {
      const from = requests.length;
      await page.selectOption(".quality", String(level));
      await until(`segments of level ${level}`, async () => (await segmentsOf(page, requests, level, from)).length > 0, 20_000);
      const t = await playerTime(page);
      await until(`playback after switching to level ${level}`, async () => (await playerTime(page)) > t + 0.5, 20_000);
    }
    await page.selectOption(".quality", "-1");
    // Hovering the seek bar previews the frame there, from the sprite VTT.
    const bar = await page.locator(".seek").boundingBox();
    await until("a preview thumbnail", async () => {
      await page.mouse.move(bar.x + bar.width * (0.4 + Math.random() * 0.2), bar.y + bar.height / 2);
      return page.evaluate(() => {
        const p = document.querySelector(".preview");
        return !p.hidden && p.firstElementChild.style.backgroundImage.includes("/media/");
      });
    }, 10_000);
    await page.screenshot({ path: join(ARTIFACTS, "player.png") });

    // Leave at a position, come back to it.
    await until("a position past 3 s", async () => (await playerTime(page)) > 3, 20_000);
    await page.focus(".stage");
    await page.keyboard.press("k"); // the play/pause shortcut
    await until("the pause", () => page.evaluate(() => document.querySelector("video").paused), 5_000);
    const left = await playerTime(page);
    await page.click("a.back");
    const resume = `.row.continue .tile[data-video-id="${videoId}"]`;
    await page.waitForSelector(`${resume} .progress div`);
    await page.click(`${tile} .fav`);
    await page.waitForSelector(`.row.newest .tile[data-video-id="${videoId}"] .fav[aria-pressed=true]`);
    await page.reload();
    await page.waitForSelector(`.row.favorites .tile[data-video-id="${videoId}"]`);
    await page.waitForSelector(`${resume} .progress div`);
    await page.screenshot({ path: join(ARTIFACTS, "catalog.png") });
    await page.click(resume);
    await page.waitForFunction(() => window.videoflixPlayer?.loadedLevels.length > 0);
    await until("the resumed position", async () => (await playerTime(page)) >= left - 1, 10_000);

    const net = checkNetwork(requests, world.origin);
    assert.deepEqual(net.foreign.map((r) => r.url), [], "requests to other origins");
    assert.ok(net.rpc.length > 5, "API calls over gRPC-web");
    assert.deepEqual(net.notGrpcWeb.map((r) => r.url), [], "API calls not in application/grpc-web+proto");
    assert.deepEqual(net.rest.map((r) => r.url), [], "REST calls");
  } finally {
    await context.close();
  }
});

test("a rejected access token is refreshed; with both tokens rejected the app shows the login page", async () => {
  const { page, context, requests } = await world.page();
  try {
    await world.logIn(page);
    await page.waitForSelector(".row .tile");

    // An access token the server does not accept: the catalog's parallel calls all fail, one
    // refresh serves them all (a second, with the spent refresh token, would revoke the session).
    const edit = (change) =>
      page.evaluate((change) => {
        const s = JSON.parse(sessionStorage.getItem("videoflix.session"));
        sessionStorage.setItem("videoflix.session", JSON.stringify({ ...s, ...change }));
      }, change);
    await edit({ accessToken: "expired.token.here" });
    await page.reload();
    await page.waitForSelector(".row .tile");
    assert.ok(requests.some((r) => r.url.endsWith("/videoflix.v1.AuthService/RefreshToken")), "a refresh");
    assert.ok(page.url().endsWith("/app/"));

    // Neither token valid any more (as after a revocation): to the login page.
    await edit({ accessToken: "revoked.token.here", refreshToken: "revoked" });
    await page.reload();
    await page.waitForURL(/\/app\/login$/);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("videoflix.session")), null);
  } finally {
    await context.close();
  }
});

test("a forgotten password is reset from the mailed link; a guest logs in and out", async () => {
  const { page, context } = await world.page();
  try {
    const email = "viewer@example.com";
    await page.goto(`${world.origin}/app/login`);
    await page.click(`a[href="/app/forgot-password"]`);
    await page.fill("input[name=email]", email);
    await page.click("button[type=submit]");
    await page.waitForSelector(".notice:not(.error):has-text('reset link')");
    const link = await world.smtp.link(email, "reset-password");
    assert.ok(link.startsWith(`${world.origin}/app/reset-password/`), link);
    await page.goto(link);
    await page.fill("input[name=password]", "Another-pass-5678");
    await page.fill("input[name=confirm]", "Another-pass-5678");
    await page.click("button[type=submit]");
    await page.waitForSelector(".notice:not(.error):has-text('password')");
    await page.click(`a[href="/app/login"]`);
    await page.fill("input[name=email]", email);
    await page.fill("input[name=password]", "Another-pass-5678");
    await page.click("button[type=submit]");
    await page.waitForSelector("header .who:text-is('viewer@example.com')");
    await page.click("header .logout");
    await page.waitForURL(/\/app\/login$/);

    await page.click("button:text-is('Continue as guest')");
    await page.waitForSelector("header .who:text-is('Guest')");
    await page.click("header .logout");
    await page.waitForURL(/\/app\/login$/);
    await page.goto(`${world.origin}/app/`);
    await page.waitForURL(/\/app\/login$/);
  } finally {
    await context.close();
  }
});

after(() => {
  // The README shows these two.
  for (const name of ["catalog.png", "player.png"]) {
    try {
      if (process.env.UPDATE_DOCS_SCREENSHOTS) copyFileSync(join(ARTIFACTS, name), join(new URL("../../docs/", import.meta.url).pathname, name));
    } catch {
      /* screenshots missing: the test failed already */
    }
  }
});
