/**
 * Entry point of the sidecar bundle's init (dist/bundle-init.mjs, run by tini as the
 * container's command). Kept apart from the CLI bundle so PID 1 starts in tens of ms. Each
 * built daemon runs from `dist/<its build entry>.mjs`, next to this file (scripts/build.mjs
 * builds one per row of the bundle protocol's table).
 */
import { fileURLToPath } from "node:url"
import { EGRESS_ENV, EGRESS_NODE_FLAGS } from "./egress/node-flags.ts"
import { runInit } from "./init.ts"

process.exitCode = await runInit({
  entryOf: (row) => fileURLToPath(new URL(`./${row.build?.entry}.mjs`, import.meta.url)),
  tuning: { egress: { nodeFlags: EGRESS_NODE_FLAGS, env: EGRESS_ENV } }
})
