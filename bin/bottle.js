#!/usr/bin/env node
// V8's on-disk compile cache (Node ≥ 22.1) roughly halves start-up after the first run.
import module from "node:module"
module.enableCompileCache?.()
await import("../dist/bottle.mjs")
