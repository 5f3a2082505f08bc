// The browser tests' world: the real `videoflix serve` binary on a free port with its own
// SQLite database and folders, a real SMTP server it mails to, FFmpeg-made clips, and headless
// Debian Chromium driven by playwright-core, recording every request the page makes.

import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SMTPServer } from "smtp-server";
import { chromium } from "playwright-core";

const here = new URL(".", import.meta.url).pathname;
export const WEB_DIR = resolve(here, "../dist");
export const ARTIFACTS = resolve(process.env.ARTIFACTS_DIR ?? resolve(here, "../test-results"));
const BIN = process.env.VIDEOFLIX_BIN ?? resolve(here, "../../target/debug/videoflix");

/** Polls `f` until it returns a truthy value; fails after `ms` with `what`. */
export async function until(what, f, ms = 30_000, every = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** The text of every MIME part of a raw message, transfer encodings undone. */
export function mailText(raw) {
  const parts = [];
  const re = /Content-Transfer-Encoding:\s*([\w-]+)[^]*?\r?\n\r?\n([^]*?)(?=\r?\n--|$)/gi;
  for (const [, encoding, body] of raw.matchAll(re)) {
    const kind = encoding.toLowerCase();
    if (kind === "base64") parts.push(Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8"));
    else if (kind === "quoted-printable")
      parts.push(body.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, x) => String.fromCharCode(parseInt(x, 16))));
    else parts.push(body);
  }
  return parts.length ? parts.join("\n") : raw;
}

/** A real SMTP server on a free port keeping every message (raw) by recipient. */
async function smtpSink() {
  const inbox = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, done) {
      const chunks = [];
      stream.on("data", (c) => chunks.push(c));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        for (const to of session.envelope.rcptTo) inbox.push({ to: to.address.toLowerCase(), raw, text: mailText(raw) });
        done();
      });
    },
  });
  const port = await freePort();
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  return {
    port,
    inbox,
    /** The first link to `route` in a mail to `to`, waiting for the mail. */
    async link(to, route) {
      const re = new RegExp(`https?://[^\\s"<>]*/${route}/[^\\s"<>]+`);
      return until(`a ${route} mail to ${to}`, () => {
        const mail = inbox.find((m) => m.to === to.toLowerCase() && re.test(m.text));
        return mail && mail.text.match(re)[0];
      });
    },
    close: () => new Promise((ok) => server.close(ok)),
  };
}

/** A short test clip (colour bars with a counter, and a tone) made by the ffmpeg CLI. */
export function makeClip(dir, name, { seconds = 12, size = "854x480" } = {}) {
  const file = join(dir, name);
  execFileSync("ffmpeg", [
    "-v", "error", "-y",
    "-f", "lavfi", "-i", `testsrc2=size=${size}:rate=30:duration=${seconds}`,
    "-f", "lavfi", "-i", `sine=frequency=440:duration=${seconds}`,
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", file,
  ]);
  return file;
}

/** Starts the server world (`env` adds or overrides server settings); `stop()` ends it. */
export async function startWorld({ env: extra = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "videoflix-browser-"));
  mkdirSync(ARTIFACTS, { recursive: true });
  const smtp = await smtpSink();
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const env = {
    PATH: process.env.PATH,
    LOG_FORMAT: "json",
    RUST_LOG: process.env.PROCESS_LOG ?? "warn",
    DATABASE_URL: `sqlite://${dir}/videoflix.db?mode=rwc`,
    SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
    JWT_SECRET: "browser-test-secret-0123456789-abcdefghij",
    PUBLIC_URL: `${origin}/`,
    FRONTEND_URL: `${origin}/app/`,
    WEB_DIR,
    MEDIA_DIR: join(dir, "media"),
    EXPORT_DIR: join(dir, "exports"),
    MAIL_OUTBOX_DIR: join(dir, "outbox"),
    TRANSCODE_PRESET: "ultrafast",
    HLS_SEGMENT_SECONDS: "2",
    THROTTLE_ENABLED: "false",
    ...extra,
  };
  const admin = { email: "admin@example.com", password: "Admin-pass-1234" };
  if (!existsSync(BIN)) {
    await smtp.close();
    throw new Error(`no videoflix binary at ${BIN} (cargo build, or set VIDEOFLIX_BIN)`);
  }
  execFileSync(BIN, ["createsuperuser", "--email", admin.email, "--password-stdin"], {
    env, input: `${admin.password}\n`, cwd: dir, stdio: ["pipe", "ignore", "inherit"],
  });
  const server = spawn(BIN, ["serve", "--addr", `127.0.0.1:${port}`], { env, cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const log = [];
  server.stderr.on("data", (d) => log.push(d.toString()));
  let exited = null;
  server.on("exit", (code) => (exited = code));
  // A world that fails to start leaves nothing running (or the test process would not exit).
  let browser;
  try {
    await until("the server to be ready", async () => {
      if (exited !== null) throw new Error(`videoflix serve exited (${exited}):\n${log.join("")}`);
      return fetch(`${origin}/readyz`).then((r) => r.ok, () => false);
    }, 60_000);

    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required"],
    });
  } catch (e) {
    server.kill("SIGKILL");
    await smtp.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    origin, dir, smtp, admin, browser, log,
    /** A fresh browser context and page, every request it makes recorded. */
    async page() {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      const requests = [];
      page.on("request", (r) => requests.push({ url: r.url(), method: r.method(), headers: r.headers() }));
      page.on("pageerror", (e) => log.push(`page error: ${e.message}\n`));
      page.setDefaultTimeout(20_000);
      return { page, context, requests };
    },
    /** Logs `page` in on the login page as `user` (the admin by default). */
    async logIn(page, user = admin) {
      await page.goto(`${origin}/app/login`);
      await page.fill("input[name=email]", user.email);
      await page.fill("input[name=password]", user.password);
      await page.click("button[type=submit]");
    },
    async stop() {
      await browser.close().catch(() => {});
      server.kill("SIGTERM");
      await until("the server to stop", () => exited !== null, 25_000).catch(() => server.kill("SIGKILL"));
      await smtp.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The page's requests sorted out: `foreign` left the server's origin, `rpc` are gRPC-web calls
 * (`notGrpcWeb` those without its content type), `rest` went anywhere but the app, the media
 * and the gRPC services (except what `allowRest` accepts).
 */
export function checkNetwork(requests, origin, allowRest = []) {
  const local = requests.filter((r) => !r.url.startsWith("blob:") && !r.url.startsWith("data:"));
  const foreign = local.filter((r) => new URL(r.url).origin !== origin);
  const rpc = local.filter((r) => /^\/videoflix\.v1\.\w+Service\//.test(new URL(r.url).pathname));
  const notGrpcWeb = rpc.filter((r) => r.headers["content-type"] !== "application/grpc-web+proto");
  const rest = local.filter((r) => {
    const path = new URL(r.url).pathname;
    const known = path.startsWith("/app/") || path.startsWith("/media/") || rpc.includes(r);
    return !known && !allowRest.some((allow) => allow(r));
  });
  return { foreign, rpc, notGrpcWeb, rest };
}
