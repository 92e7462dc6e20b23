// Bundles the CLI (and the bundle daemons it hosts) into ES modules, so `bottle` starts
// without resolving hundreds of files. Everything is bundled, mockttp included (resolving its
// CommonJS tree cost the egress daemon ~150 ms at start-up), so the sidecar image needs no
// node_modules. The egress daemon is a separate chunk loaded on demand: CLI start-up never
// pays for the proxy. Each daemon of the bundle protocol's table that has a build is an entry of
// its own (dist/<entry>.mjs), which the bundle's init spawns.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import { build } from "esbuild"
// The bundle protocol's table names each built daemon's source and entry: one entry per row.
import { builtDaemons } from "../src/schema/BundleProtocol.ts"

fs.rmSync("dist", { recursive: true, force: true })

// Dependencies of mockttp the egress daemon never runs, replaced by stubs that throw if called:
// zstd-codec (a 6 MB wasm fallback; Node 22 has zstd built in) and pac-proxy-agent (PAC proxy
// support, with a JavaScript sandbox; egress never uses an upstream proxy). Their source text
// alone cost the daemon ~20 MB of memory.
const unused = /^(zstd-codec(\/.*)?|pac-proxy-agent)$/
const stubUnused = {
  name: "stub-unused",
  setup(b) {
    b.onResolve({ filter: unused }, (args) => ({ path: args.path, namespace: "stub-unused" }))
    b.onLoad({ filter: /.*/, namespace: "stub-unused" }, (args) => ({
      contents: `const fail = () => { throw new Error(${JSON.stringify(`bot-bottle: ${args.path} is not bundled`)}) }
module.exports = new Proxy({}, { get: (_, key) => (key === "__esModule" ? false : fail) })`,
      loader: "js"
    }))
  }
}

await build({
  entryPoints: {
    bottle: "src/cli/main.ts",
    "bundle-init": "bundle/init-main.ts",
    ...Object.fromEntries(builtDaemons().map((d) => [d.build.entry, d.build.source]))
  },
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
  // The dashboard's Ink/React components (.tsx) compile to React's automatic runtime; Ink's
  // optional React DevTools hook (only under DEV=true) is not bundled.
  jsx: "automatic",
  external: ["react-devtools-core"],
  plugins: [stubUnused],
  logLevel: "warning"
})

// The public module (package.json `exports`: bot-bottle, bot-bottle/testing, bot-bottle/promise):
// built apart from the CLI with its dependencies left as imports, so a script's `effect` is the
// one the programs run on (a bundled second copy would not share its services or fibers), and
// typed by declarations tsc writes from the sources (dist/types, tsconfig.lib.json).
await build({
  entryPoints: { index: "src/index.ts", testing: "src/testing.ts", promise: "src/promise.ts" },
  outdir: "dist/lib",
  outExtension: { ".js": ".mjs" },
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  packages: "external",
  platform: "node",
  format: "esm",
  target: "node22",
  sourcemap: "linked",
  define: { __BOTTLE_VERSION__: JSON.stringify(JSON.parse(fs.readFileSync("package.json", "utf8")).version) },
  logLevel: "warning"
})
execFileSync(process.execPath, [createRequire(import.meta.url).resolve("typescript/bin/tsc"), "-p", "tsconfig.lib.json"], { stdio: "inherit" })
