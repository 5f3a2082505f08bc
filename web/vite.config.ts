import { defineConfig } from "vite";

// Served by `videoflix serve` at /app/ (WEB_DIR = web/dist); hashed files go to dist/assets/,
// which the server caches for a year.
export default defineConfig({
  base: "/app/",
  // hls.js (~580 kB, loaded lazily by the player) is the only large chunk.
  build: { outDir: "dist", assetsDir: "assets", target: "es2022", chunkSizeWarningLimit: 600 },
});
