// The player: hls.js (loaded only here) with a quality menu (auto + each rendition), recovery
// from decode errors hls.js does not see, preview thumbnails from the sprite VTT on the seek
// bar, keyboard shortcuts, resume at the saved position and progress saved every 5 s, on pause
// and on leaving. Browsers without MSE but with native HLS (Safari on iOS) play the master
// playlist natively.

import type HlsType from "hls.js";
import { describeError, videoApi } from "../api.js";
import type { Video } from "../gen/videoflix/v1/video_pb.js";
import { href, type Page } from "../router.js";
import { formatTime, h, notice } from "../ui.js";
import { loadThumbnails, type Thumb } from "./thumbnails.js";

const SAVE_EVERY_MS = 5000;

/** What the page exposes for the browser tests: the hls.js instance and the levels it loaded. */
declare global {
  interface Window {
    videoflixPlayer?: { hls: HlsType | null; loadedLevels: number[]; recoveries: number };
  }
}

export const playerPage: Page = async (root, { id }) => {
  const status = notice();
  root.append(h("p", {}, h("a", { href: href(""), "data-link": true, class: "back" }, "← Back")), status);
  let video: Video;
  try {
    video = (await videoApi.getVideo({ id: BigInt(id) })).video!;
  } catch (err) {
    status.show(describeError(err), true);
    return;
  }
  const media = video.media;
  if (!media?.hlsUrl) {
    status.show("This video is not ready to play yet.", true);
    return;
  }
  const el = h("video", { poster: media.posterUrl || undefined, playsInline: true, preload: "auto" });
  const play = h("button", { class: "play", title: "Play (k)" }, "▶");
  const seek = h("input", { type: "range", min: "0", max: "0", step: "0.1", value: "0", class: "seek", "aria-label": "Seek" });
  const time = h("span", { class: "time" }, "0:00");
  const quality = h("select", { class: "quality", "aria-label": "Quality" }, h("option", { value: "-1" }, "Auto"));
  const mute = h("button", { class: "secondary", title: "Mute (m)" }, "Mute");
  const full = h("button", { class: "secondary", title: "Fullscreen (f)" }, "Full screen");
  const preview = h("div", { class: "preview", hidden: true }, h("div", { class: "frame" }), h("span"));
  const stage = h(
    "div",
    { class: "stage", tabIndex: 0 },
    el,
    h("div", { class: "controls" }, play, h("div", { class: "seekwrap" }, seek, preview), time, quality, mute, full),
  );
  root.append(h("h1", {}, video.title), stage, h("p", { class: "description" }, video.description));
  const state = { hls: null as HlsType | null, loadedLevels: [] as number[], recoveries: 0 };
  window.videoflixPlayer = state;

  // Resume unless (nearly) finished.
  const duration = video.durationSeconds;
  const resumeAt = video.progressSeconds > 0 && (!duration || video.progressSeconds < duration - 3) ? video.progressSeconds : 0;

  const { default: Hls } = await import("hls.js");
  if (Hls.isSupported()) {
    const hls = new Hls({ startPosition: resumeAt || -1, capLevelToPlayerSize: false });
    state.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      hls.levels.forEach((l, i) =>
        quality.append(h("option", { value: String(i) }, l.height ? `${l.height}p` : `Level ${i + 1}`)),
      );
    });
    hls.on(Hls.Events.LEVEL_LOADED, (_e, data) => state.loadedLevels.push(data.level));
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        state.recoveries++;
        hls.recoverMediaError();
      } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
      else status.show(`Playback failed: ${data.details}`, true);
    });
    // A switch into a segment that does not start with a keyframe fails in the decoder, and
    // hls.js is not told: the element's own error is the only sign.
    el.addEventListener("error", () => {
      state.recoveries++;
      hls.recoverMediaError();
    });
    hls.loadSource(media.hlsUrl);
    hls.attachMedia(el);
    quality.addEventListener("change", () => {
      // currentLevel switches now (flushing the buffer); -1 is automatic.
      hls.currentLevel = Number(quality.value);
      if (el.paused && !el.ended) void el.play().catch(() => {});
    });
  } else if (el.canPlayType("application/vnd.apple.mpegurl")) {
    quality.disabled = true;
    el.src = media.hlsUrl;
    el.addEventListener("loadedmetadata", () => { if (resumeAt) el.currentTime = resumeAt; }, { once: true });
  } else {
    status.show("This browser cannot play HLS.", true);
  }

  // Controls.
  const togglePlay = () => (el.paused ? void el.play().catch(() => {}) : el.pause());
  play.addEventListener("click", togglePlay);
  el.addEventListener("click", togglePlay);
  el.addEventListener("play", () => (play.textContent = "❚❚"));
  el.addEventListener("pause", () => (play.textContent = "▶"));
  el.addEventListener("durationchange", () => (seek.max = String(el.duration || 0)));
  el.addEventListener("timeupdate", () => {
    if (document.activeElement !== seek) seek.value = String(el.currentTime);
    time.textContent = `${formatTime(el.currentTime)} / ${formatTime(el.duration || duration)}`;
  });
  seek.addEventListener("input", () => (el.currentTime = Number(seek.value)));
  mute.addEventListener("click", () => {
    el.muted = !el.muted;
    mute.textContent = el.muted ? "Unmute" : "Mute";
  });
  full.addEventListener("click", () =>
    document.fullscreenElement ? void document.exitFullscreen() : void stage.requestFullscreen(),
  );
  const keys = (e: KeyboardEvent) => {
    if ((e.target as Element).closest("input, select, textarea") && e.target !== seek) return;
    const actions: Record<string, () => void> = {
      " ": togglePlay,
      k: togglePlay,
      ArrowLeft: () => (el.currentTime = Math.max(0, el.currentTime - 5)),
      ArrowRight: () => (el.currentTime = Math.min(el.duration || 0, el.currentTime + 5)),
      j: () => (el.currentTime = Math.max(0, el.currentTime - 10)),
      l: () => (el.currentTime = Math.min(el.duration || 0, el.currentTime + 10)),
      ArrowUp: () => (el.volume = Math.min(1, el.volume + 0.1)),
      ArrowDown: () => (el.volume = Math.max(0, el.volume - 0.1)),
      m: () => mute.click(),
      f: () => full.click(),
    };
    const action = actions[e.key];
    if (action) {
      e.preventDefault();
      action();
    }
  };
  document.addEventListener("keydown", keys);

  // Preview thumbnails on the seek bar.
  let thumbs: Thumb[] = [];
  if (media.thumbnailsVttUrl) loadThumbnails(media.thumbnailsVttUrl).then((t) => (thumbs = t), () => {});
  seek.addEventListener("mousemove", (e) => {
    const total = el.duration || duration;
    if (!thumbs.length || !total) return;
    const box = seek.getBoundingClientRect();
    const at = Math.min(1, Math.max(0, (e.clientX - box.left) / box.width)) * total;
    const t = thumbs.find((c) => at >= c.start && at < c.end) ?? thumbs[thumbs.length - 1];
    const frame = preview.firstElementChild as HTMLElement;
    frame.style.cssText = `width:${t.w}px;height:${t.h}px;background:url("${t.url}") -${t.x}px -${t.y}px`;
    preview.lastElementChild!.textContent = formatTime(at);
    preview.style.left = `${e.clientX - box.left}px`;
    preview.hidden = false;
  });
  seek.addEventListener("mouseleave", () => (preview.hidden = true));

  // Progress: every few seconds while playing, on pause and on leaving.
  let saved = -1;
  const save = async () => {
    const position = Math.floor(el.currentTime * 10) / 10;
    if (position <= 0 || position === saved) return;
    saved = position;
    await videoApi.updateWatchProgress({ videoId: video.id, positionSeconds: position }).catch(() => {});
  };
  const timer = setInterval(() => !el.paused && save(), SAVE_EVERY_MS);
  el.addEventListener("pause", () => void save());
  const hide = () => void save();
  addEventListener("pagehide", hide);
  stage.focus({ preventScroll: true });

  return async () => {
    clearInterval(timer);
    await save();
    removeEventListener("pagehide", hide);
    document.removeEventListener("keydown", keys);
    state.hls?.destroy();
    el.removeAttribute("src");
  };
};
