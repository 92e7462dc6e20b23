// Bundles the CLI (and the bundle daemons it hosts) into one ES module, so `bottle` starts
// without resolving hundreds of files. mockttp stays external: only the egress daemon loads
// it, lazily, so CLI start-up never pays for it.
import { build } from "esbuild"

await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/bottle.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  sourcemap: "linked",
  external: ["mockttp"],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: "warning"
})
