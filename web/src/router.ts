// History routing under /app/: a path pattern per page; every page gets the element to fill and
// returns an optional cleanup, run when the page is left.

export type Cleanup = (() => void | Promise<void>) | void;
export type Page = (root: HTMLElement, params: Record<string, string>) => Cleanup | Promise<Cleanup>;

export const BASE = "/app/";
const routes: { pattern: RegExp; keys: string[]; page: Page; guard?: () => string | null }[] = [];
let cleanup: Cleanup;
let root: HTMLElement;
let generation = 0;

/** `route("watch/:id", page)`; `guard` returns a path to go to instead, or null. */
export function route(path: string, page: Page, guard?: () => string | null): void {
  const keys: string[] = [];
  const source = path
    .replace(/\/$/, "")
    .replace(/:(\w+)/g, (_, k: string) => {
      keys.push(k);
      return "([^/]+)";
    });
  routes.push({ pattern: new RegExp(`^${source}/?$`), keys, page, guard });
}

export function navigate(path: string, replace = false): void {
  const url = BASE + path.replace(/^\//, "");
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  void render();
}

export function start(el: HTMLElement): void {
  root = el;
  addEventListener("popstate", () => void render());
  document.addEventListener("click", (e) => {
    const a = (e.target as Element).closest?.("a[data-link]");
    if (!a || e.defaultPrevented || (e as MouseEvent).ctrlKey || (e as MouseEvent).metaKey) return;
    e.preventDefault();
    navigate(a.getAttribute("href")!.slice(BASE.length));
  });
  void render();
}

/** Renders the page of the current URL (again). */
export async function render(): Promise<void> {
  const mine = ++generation;
  // The page left finishes first (the player saves the position the next page may show).
  const leaving = cleanup;
  cleanup = undefined;
  if (typeof leaving === "function") await leaving();
  const path = decodeURI(location.pathname).slice(BASE.length).replace(/\/$/, "");
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    const redirect = r.guard?.();
    if (redirect !== undefined && redirect !== null) return navigate(redirect, true);
    const params = Object.fromEntries(r.keys.map((k, i) => [k, m[i + 1]]));
    root.replaceChildren();
    const c = await r.page(root, params);
    if (mine === generation) cleanup = c;
    else if (typeof c === "function") void c();
    return;
  }
  navigate("", true);
}

/** `href` of an app path, for `<a data-link>`. */
export function href(path: string): string {
  return BASE + path.replace(/^\//, "");
}
