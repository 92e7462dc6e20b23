// Bundles the CLI (and the bundle daemons it hosts) into ES modules, so `bottle` starts
// without resolving hundreds of files. Everything is bundled, mockttp included (resolving its
// CommonJS tree cost the egress daemon ~150 ms at start-up), so the sidecar image needs no
// node_modules. The egress daemon is a separate chunk loaded on demand: CLI start-up never
// pays for the proxy.
import * as fs from "node:fs"
import { build } from "esbuild"

fs.rmSync("dist", { recursive: true, force: true })

await build({
  entryPoints: { bottle: "src/cli/main.ts", "bundle-init": "bundle/init-main.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  sourcemap: "linked",
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  define: { __BOTTLE_VERSION__: JSON.stringify(JSON.parse(fs.readFileSync("package.json", "utf8")).version) },
  logLevel: "warning"
})
