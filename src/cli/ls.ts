/**
 * `bottle ls`: bottles known to this host, with their live status, age and workspace;
 * `--quiet` prints names only (for scripts and `xargs`), `--json` everything (camelCase).
 */
import * as os from "node:os"
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { listBottles } from "../programs/bottles.ts"
import { jsonFlag } from "./flags.ts"
import { relativeAge, table, visible } from "./render.ts"

/** A path with the home directory shown as ~. */
const tilde = (p: string): string => {
  const home = os.homedir()
  return home !== "/" && (p === home || p.startsWith(`${home}/`)) ? `~${p.slice(home.length)}` : p
}

export const ls = Command.make(
  "ls",
  {
    json: jsonFlag,
    quiet: Flag.Boolean("quiet").pipe(Flag.withAlias("q"), Flag.withDescription("Print bottle names only, one a line"), Flag.withDefault(false))
  },
  Effect.fn(function*({ json, quiet }) {
    const rows = yield* listBottles()
    if (json) return yield* Console.log(JSON.stringify(rows, null, 2))
    if (quiet) {
      for (const r of rows) yield* Console.log(r.slug)
      return
    }
    if (rows.length === 0) return yield* Console.log("no bottles (start one with `bottle start <agent>`)")
    const now = Date.now()
    yield* Console.log(table(
      // VOLUMES: what `stop` keeps for `resume` (workspace, home); `stop --purge` removes them.
      ["NAME", "AGENT", "BACKEND", "STATUS", "VOLUMES", "CREATED", "WORKSPACE"],
      rows.map((r) => [r.slug, r.agent, r.backend, r.status, r.volumes.length > 0 ? `${r.volumes.length} kept` : "-", relativeAge(r.createdAt, now), tilde(r.workspace)].map(visible))
    ))
  })
).pipe(
  Command.withDescription("List bottles: status, age, workspace"),
  Command.withExamples([
    { command: "bottle ls", description: "A table" },
    { command: "bottle ls -q | xargs -n1 bottle stop", description: "Stop every bottle" },
    { command: "bottle ls --json", description: "For scripts" }
  ])
)
