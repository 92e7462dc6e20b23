/**
 * Entry point of the sidecar bundle's init (dist/bundle-init.mjs, run by tini as the
 * container's command). Kept apart from the CLI bundle so PID 1 starts in tens of ms.
 */
import { fileURLToPath } from "node:url"
import { runInit } from "./init.ts"

process.exitCode = await runInit({ egress: fileURLToPath(new URL("./egress-daemon.mjs", import.meta.url)) })
