// The catalog: continue watching (with progress), my list, newest, one row per genre, and a
// debounced search that replaces the rows with its results.

import { describeError, videoApi } from "../api.js";
import { Genre, type Video } from "../gen/videoflix/v1/video_pb.js";
import { href, type Page } from "../router.js";
import { debounce, h, mount, notice } from "../ui.js";

export function genreName(g: Genre): string {
  const name = Genre[g] ?? "UNSPECIFIED";
  return name.charAt(0) + name.slice(1).toLowerCase();
}

/** A video's card: poster, title, progress bar, favorite toggle. */
function card(v: Video, progress = false): HTMLElement {
  const fav = h(
    "button",
    {
      class: "fav",
      title: "My list",
      "aria-pressed": String(v.isFavorite),
      onclick: async (e: Event) => {
        e.preventDefault();
        e.stopPropagation();
        try {
          if (v.isFavorite) await videoApi.removeFavorite({ videoId: v.id });
          else await videoApi.addFavorite({ videoId: v.id });
          v.isFavorite = !v.isFavorite;
          fav.setAttribute("aria-pressed", String(v.isFavorite));
          fav.textContent = v.isFavorite ? "♥" : "♡";
        } catch (err) {
          alert(describeError(err));
        }
      },
    },
    v.isFavorite ? "♥" : "♡",
  );
  const poster = v.media?.posterUrl;
  const share = v.durationSeconds > 0 ? Math.min(1, v.progressSeconds / v.durationSeconds) : 0;
  return h(
    "a",
    { class: "tile", href: href(`watch/${v.id}`), "data-link": true, "data-video-id": v.id.toString() },
    poster ? h("img", { src: poster, alt: "", loading: "lazy" }) : h("div", { class: "noposter" }),
    h("span", { class: "title" }, v.title),
    progress && share > 0
      ? h("div", { class: "progress" }, h("div", { style: `width:${(share * 100).toFixed(1)}%` }))
      : null,
    fav,
  );
}

function row(title: string, videos: Video[], progress = false, cls = ""): HTMLElement | null {
  if (!videos.length) return null;
  return h(
    "section",
    { class: `row ${cls}`.trim() },
    h("h2", {}, title),
    h("div", { class: "tiles" }, videos.map((v) => card(v, progress))),
  );
}

export const catalogPage: Page = async (root) => {
  const status = notice();
  const rows = h("div", { class: "rows" });
  const search = h("input", {
    type: "search",
    placeholder: "Search titles and descriptions",
    "aria-label": "Search",
    oninput: debounce(() => void find(search.value.trim()), 300),
  });
  root.append(h("div", { class: "toolbar" }, search), status, rows);
  let latest = 0;

  async function browse(): Promise<void> {
    const [continuing, favorites, newest, categorized] = await Promise.all([
      videoApi.listContinueWatching({ pageSize: 20 }),
      videoApi.listFavorites({ pageSize: 20 }),
      videoApi.listVideos({ ordering: "-uploaded_at", pageSize: 20 }),
      videoApi.listCategorizedVideos({}),
    ]);
    mount(
      rows,
      row("Continue watching", continuing.videos, true, "continue"),
      row("My list", favorites.videos, false, "favorites"),
      row("Newest", newest.videos, false, "newest"),
      categorized.categories.map((c) => row(genreName(c.genre), c.videos, false, "genre")),
    );
    if (!rows.childElementCount) status.show("No videos yet.");
  }

  async function find(query: string): Promise<void> {
    const mine = ++latest;
    try {
      if (!query) {
        status.show("");
        return await browse();
      }
      const r = await videoApi.listVideos({ search: query, pageSize: 50 });
      if (mine !== latest) return;
      status.show(r.videos.length ? "" : `Nothing matches “${query}”.`);
      mount(rows, row(`Results for “${query}”`, r.videos, false, "results"));
    } catch (err) {
      status.show(describeError(err), true);
    }
  }

  try {
    await browse();
  } catch (err) {
    status.show(describeError(err), true);
  }
};
