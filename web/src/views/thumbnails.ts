// Preview thumbnails: the sprite WebVTT (`00:00:00.000 --> 00:00:05.000` then
// `sprite.jpg#xywh=x,y,w,h`), parsed into cues with absolute image URLs.

export interface Thumb {
  start: number;
  end: number;
  url: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

function seconds(stamp: string): number {
  return stamp
    .trim()
    .split(":")
    .reduce((acc, part) => acc * 60 + Number(part), 0);
}

export async function loadThumbnails(vttUrl: string): Promise<Thumb[]> {
  const response = await fetch(vttUrl);
  if (!response.ok) return [];
  const cues: Thumb[] = [];
  for (const block of (await response.text()).split(/\r?\n\r?\n/)) {
    const lines = block.split(/\r?\n/).filter(Boolean);
    const timing = lines.findIndex((l) => l.includes("-->"));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [from, to] = lines[timing].split("-->");
    const [file, fragment = ""] = lines[timing + 1].split("#xywh=");
    const [x, y, w, h] = fragment.split(",").map(Number);
    cues.push({ start: seconds(from), end: seconds(to), url: new URL(file, vttUrl).href, x, y, w, h });
  }
  return cues;
}
