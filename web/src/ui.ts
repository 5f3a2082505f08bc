// DOM helpers: no framework, just elements.

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, unknown>;

/** `h("button", {class: "x", onclick: f}, "Play")`: an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v as EventListener);
    } else if (k in el && k !== "list" && k !== "form") {
      (el as unknown as Record<string, unknown>)[k] = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children.flat()) if (c) el.append(c);
  return el;
}

/** Replaces the children of `el`. */
export function mount(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren(...(children.flat().filter(Boolean) as (Node | string)[]));
}

/** A status line that shows errors and notices. */
export function notice(): HTMLParagraphElement & { show(text: string, error?: boolean): void } {
  const p = h("p", { class: "notice", role: "status" }) as HTMLParagraphElement & {
    show(text: string, error?: boolean): void;
  };
  p.show = (text, error = false) => {
    p.textContent = text;
    p.classList.toggle("error", error);
  };
  return p;
}

export function formatTime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** `f` at most once per `ms` of quiet. */
export function debounce<A extends unknown[]>(f: (...a: A) => void, ms: number): (...a: A) => void {
  let t: ReturnType<typeof setTimeout> | undefined;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => f(...a), ms);
  };
}
