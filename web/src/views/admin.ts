// The admin console: upload (REST multipart with a progress bar, since browsers cannot stream
// a gRPC-web request, then the live transcode status over the WatchTranscodeStatus server
// stream), the videos table (status, edit, delete), and the tabs of admin_more.ts.

import { describeError, freshAccessToken, videoApi } from "../api.js";
import { Genre, Language, VideoStatus, type Video } from "../gen/videoflix/v1/video_pb.js";
import { href, type Page } from "../router.js";
import { h, mount, notice } from "../ui.js";
import { genreName } from "./catalog.js";
import { exportsTab, jobsTab, usersTab } from "./admin_more.js";

const TABS: Record<string, [string, (root: HTMLElement) => Promise<void> | void]> = {
  upload: ["Upload", uploadTab],
  videos: ["Videos", videosTab],
  users: ["Users", usersTab],
  jobs: ["Jobs", jobsTab],
  exports: ["Exports & import", exportsTab],
};

export const adminPage: Page = async (root, { tab = "upload" }) => {
  const body = h("div");
  root.append(
    h(
      "nav",
      { class: "tabs" },
      Object.entries(TABS).map(([key, [label]]) =>
        h("a", { href: href(`admin/${key}`), "data-link": true, class: key === tab ? "active" : "" }, label),
      ),
    ),
    body,
  );
  await (TABS[tab] ?? TABS.upload)[1](body);
};

function options<E extends Record<string, string | number>>(e: E, lower = true): HTMLOptionElement[] {
  return Object.entries(e)
    .filter(([k, v]) => typeof v === "number" && v !== 0 && !k.endsWith("UNSPECIFIED"))
    .map(([k, v]) => h("option", { value: lower ? k.toLowerCase() : String(v) }, k.charAt(0) + k.slice(1).toLowerCase()));
}

/** POSTs the form to /api/videos/ with upload progress; resolves to the created video's id. */
function upload(form: FormData, token: string, onProgress: (share: number) => void): Promise<bigint> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/videos/");
    xhr.setRequestHeader("authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onerror = () => reject(new Error("The upload failed (network error)."));
    xhr.onload = () => {
      let body: { id?: number; message?: string[] } = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status === 201 || xhr.status === 200) resolve(BigInt(body.id ?? 0));
      else reject(new Error(body.message?.join(" ") || `The upload failed (HTTP ${xhr.status}).`));
    };
    xhr.send(form);
  });
}

function uploadTab(root: HTMLElement): void {
  const status = notice();
  const bar = h("progress", { class: "upload-progress", max: 1, value: 0 });
  const transcode = h("progress", { class: "transcode-progress", max: 100, value: 0 });
  const step = h("p", { class: "transcode-step" });
  const events = h("ol", { class: "events" });
  const form = h(
    "form",
    {
      class: "stack",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const data = new FormData(form);
        const submit = form.querySelector("button")!;
        submit.disabled = true;
        try {
          const token = await freshAccessToken();
          if (!token) return;
          status.show("Uploading…");
          const id = await upload(data, token, (share) => (bar.value = share));
          status.show(`Uploaded as video ${id}: processing…`);
          await watch(id);
        } catch (err) {
          status.show(err instanceof Error && !("code" in err) ? err.message : describeError(err), true);
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("label", {}, "Title", h("input", { name: "title", required: true, maxLength: 80 })),
    h("label", {}, "Description", h("textarea", { name: "description", rows: 3 })),
    h("label", {}, "Genre", h("select", { name: "genre" }, options(Genre))),
    h("label", {}, "Language", h("select", { name: "language" }, options(Language))),
    h("label", {}, "Video file", h("input", { name: "video_file", type: "file", accept: "video/*", required: true })),
    h("button", { type: "submit" }, "Upload"),
  );

  async function watch(videoId: bigint): Promise<void> {
    for await (const ev of videoApi.watchTranscodeStatus({ videoId })) {
      const name = VideoStatus[ev.status].toLowerCase();
      transcode.value = ev.percent;
      step.textContent = `${name}${ev.step ? ` · ${ev.step}` : ""} · ${ev.percent.toFixed(0)} %`;
      events.append(h("li", { "data-status": name }, step.textContent));
      events.scrollTop = events.scrollHeight;
      if (ev.status === VideoStatus.READY) {
        status.show("Ready: the video is in the catalog.");
        status.append(" ", h("a", { href: href(`watch/${videoId}`), "data-link": true, class: "watch" }, "Watch it"));
        return;
      }
      if (ev.status === VideoStatus.FAILED) {
        status.show(`Processing failed: ${ev.reason || "no reason given"}`, true);
        return;
      }
    }
  }

  root.append(
    h("h1", {}, "Upload a video"),
    h(
      "div",
      { class: "upload" },
      form,
      h("div", {}, h("h2", {}, "Upload"), bar, h("h2", {}, "Processing"), transcode, step, status, events),
    ),
  );
}

async function videosTab(root: HTMLElement): Promise<void> {
  const status = notice();
  const table = h("table", { class: "videos" });
  root.append(h("h1", {}, "Videos"), status, table);
  const load = async () => {
    try {
      const r = await videoApi.listVideos({ pageSize: 100, ordering: "-uploaded_at" });
      mount(
        table,
        h("tr", {}, ["Title", "Genre", "Status", "Uploaded", ""].map((t) => h("th", {}, t))),
        r.videos.map((v) => videoRow(v, load, status)),
      );
    } catch (err) {
      status.show(describeError(err), true);
    }
  };
  await load();
}

function videoRow(v: Video, reload: () => Promise<void>, status: ReturnType<typeof notice>): HTMLElement {
  const title = h("input", { value: v.title });
  const genre = h("select", {}, options(Genre, false));
  genre.value = String(v.genre);
  const state = VideoStatus[v.status].toLowerCase() + (v.statusReason ? `: ${v.statusReason}` : "");
  return h(
    "tr",
    {},
    h("td", {}, title),
    h("td", {}, genre, h("span", { hidden: true }, genreName(v.genre))),
    h("td", {}, state),
    h("td", {}, v.uploadedAt ? new Date(Number(v.uploadedAt.seconds) * 1000).toLocaleString() : ""),
    h(
      "td",
      {},
      h(
        "button",
        {
          onclick: async () => {
            try {
              await videoApi.updateVideo({
                id: v.id,
                metadata: { title: title.value, genre: Number(genre.value) },
                updateMask: { paths: ["title", "genre"] },
              });
              status.show(`Saved “${title.value}”.`);
            } catch (err) {
              status.show(describeError(err), true);
            }
          },
        },
        "Save",
      ),
      " ",
      h(
        "button",
        {
          class: "secondary",
          onclick: async () => {
            if (!confirm(`Delete “${v.title}”?`)) return;
            try {
              await videoApi.deleteVideo({ id: v.id });
              await reload();
            } catch (err) {
              status.show(describeError(err), true);
            }
          },
        },
        "Delete",
      ),
    ),
  );
}
