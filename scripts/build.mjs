// Bundles the CLI (and the bundle daemons it hosts) into one ES module, so `bottle` starts
// without resolving hundreds of files. mockttp stays external and the egress daemon is a
// separate chunk, loaded on demand: CLI start-up never pays for the proxy.
import { build } from "esbuild"

await build({
  entryPoints: { bottle: "src/cli/main.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  sourcemap: "linked",
  external: ["mockttp"],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: "warning"
})
