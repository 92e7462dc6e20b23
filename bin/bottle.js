#!/usr/bin/env node
// V8's on-disk compile cache (Node ≥ 22.1) roughly halves start-up after the first run.
import module from "node:module"
module.enableCompileCache?.()
// `npm run bottle -- …` runs in the package's directory; the user meant the one they were in.
if (process.env.npm_lifecycle_event === "bottle" && process.env.INIT_CWD) process.chdir(process.env.INIT_CWD)
await import("../dist/bottle.mjs")
