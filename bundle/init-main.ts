/**
 * Entry point of the sidecar bundle's init (dist/bundle-init.mjs, run by tini as the
 * container's command). Kept apart from the CLI bundle so PID 1 starts in tens of ms.
 */
import { fileURLToPath } from "node:url"
import { runInit } from "./init.ts"

const self = fileURLToPath(new URL("./bottle.mjs", import.meta.url))
process.exitCode = await runInit(self)
