// An admin's upload in Chromium: a clip chosen in the form goes up over REST with a progress
// bar, then live transcode status arrives over the gRPC-web server stream WatchTranscodeStatus
// (several `processing` events before `ready`), and the video is in the catalog and plays;
// then the rest of the console: videos, users, a job run now, an export downloaded and its
// import previewed (dry run).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, checkNetwork, makeClip, startWorld, until } from "./harness.mjs";

let world;

before(async () => {
  world = await startWorld();
});

after(async () => {
  await world?.stop();
  // The README shows it.
  if (process.env.UPDATE_DOCS_SCREENSHOTS && existsSync(join(ARTIFACTS, "admin-upload.png")))
    copyFileSync(join(ARTIFACTS, "admin-upload.png"), new URL("../../docs/admin-upload.png", import.meta.url).pathname);
});

test("an admin uploads a clip, watches it transcode live, and it plays from the catalog", async () => {
  const { page, context, requests } = await world.page();
  try {
    const clip = makeClip(world.dir, "upload.mp4", { seconds: 20 });
    await world.logIn(page);
    await page.waitForURL(/\/app\/$/);
    await page.click("header >> text=Admin");
    await page.waitForSelector("form.stack input[name=title]");

    // Upload progress is reported as the bytes go up.
    await page.evaluate(() => {
      window.uploadProgress = [];
      const bar = document.querySelector(".upload-progress");
      const { get, set } = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, "value");
      Object.defineProperty(bar, "value", {
        get() { return get.call(this); },
        set(v) { window.uploadProgress.push(v); set.call(this, v); },
      });
    });
    await page.fill("input[name=title]", "Uploaded in the browser");
    await page.fill("textarea[name=description]", "Made by the admin browser test.");
    await page.selectOption("select[name=genre]", "technic");
    await page.selectOption("select[name=language]", "german");
    await page.setInputFiles("input[name=video_file]", clip);
    await page.click("form.stack button[type=submit]");

    await page.waitForSelector(".events li[data-status=processing]", { timeout: 60_000 });
    await page.waitForSelector(".events li[data-status=ready]", { timeout: 90_000 });
    await page.screenshot({ path: join(ARTIFACTS, "admin-upload.png") });
    const progress = await page.evaluate(() => window.uploadProgress);
    // Only the upload's progress events set the bar.
    assert.ok(progress.length > 0 && progress.at(-1) === 1, `upload progress: ${progress}`);
    const statuses = await page.$$eval(".events li", (lis) => lis.map((li) => li.dataset.status));
    assert.ok(statuses.filter((s) => s === "processing").length > 1, `events: ${statuses}`);
    assert.equal(statuses.at(-1), "ready");
    assert.ok(requests.some((r) => r.url.endsWith("/videoflix.v1.VideoService/WatchTranscodeStatus")));

    // In the catalog, and it plays.
    await page.click("a.logo");
    const tile = ".row.newest .tile:has-text('Uploaded in the browser')";
    await page.waitForSelector(tile);
    await page.click(tile);
    await page.waitForFunction(() => window.videoflixPlayer?.loadedLevels.length > 0);
    await page.click(".controls .play");
    await until("playback to advance", () => page.evaluate(() => document.querySelector("video").currentTime > 1), 20_000);

    const upload = (r) => r.method === "POST" && new URL(r.url).pathname === "/api/videos/";
    const net = checkNetwork(requests, world.origin, [upload]);
    assert.deepEqual(net.foreign.map((r) => r.url), [], "requests to other origins");
    assert.deepEqual(net.notGrpcWeb.map((r) => r.url), [], "API calls not in application/grpc-web+proto");
    assert.deepEqual(net.rest.map((r) => r.url), [], "REST calls besides the upload");
    assert.equal(requests.filter(upload).length, 1, "one upload over REST");
  } finally {
    await context.close();
  }
});

test("the admin console lists videos, users, jobs and exports, and previews an import", async () => {
  const { page, context, requests } = await world.page();
  try {
    await world.logIn(page);
    await page.waitForURL(/\/app\/$/);

    await page.goto(`${world.origin}/app/admin/videos`);
    await page.waitForSelector("table.videos td:has-text('ready')");

    await page.goto(`${world.origin}/app/admin/users`);
    await page.waitForSelector(`table.users td:text-is("${world.admin.email}")`);

    await page.goto(`${world.origin}/app/admin/jobs`);
    const job = "table.jobs tr:has(td:text-is('clean-sessions'))";
    await page.click(`${job} button:text-is('Run now')`);
    await page.waitForSelector(".notice:has-text('clean-sessions ran.')");
    await page.waitForSelector("table.runs td:text-is('clean-sessions')");

    await page.goto(`${world.origin}/app/admin/exports`);
    await page.click("button:text-is('Create export')");
    await page.waitForSelector("table.exports tr td:first-child");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("table.exports button:text-is('Download')")]);
    const file = join(world.dir, "export.json");
    await download.saveAs(file);
    await page.setInputFiles(".import input[type=file]", file);
    await page.click("button:text-is('Preview (dry run)')");
    await page.waitForSelector(".import-result:has-text('Dry run')");
    assert.match(await page.textContent(".import-result"), /Videos: \d+ new, \d+ changed, \d+ unchanged/);

    const net = checkNetwork(requests, world.origin);
    assert.deepEqual(net.rest.map((r) => r.url), [], "REST calls");
    assert.deepEqual(net.notGrpcWeb.map((r) => r.url), [], "API calls not in application/grpc-web+proto");
  } finally {
    await context.close();
  }
});
