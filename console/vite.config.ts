import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

/**
 * The console is a static single-page app: `npm run build:console` writes console/dist, which the hub
 * serves at GET / on its own address. `npx vite console` serves it with hot reload on :5173; point it at
 * a hub with FLIP_HUB_URL (the hub must list http://localhost:5173 in FLIP_CONSOLE_ORIGINS).
 */
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  define: { "import.meta.env.FLIP_HUB_URL": JSON.stringify(process.env.FLIP_HUB_URL ?? "") },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 1024 },
  server: { port: 5173, strictPort: true },
});
