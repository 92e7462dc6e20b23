/** `bottle ls`: bottles known to this host, with their live status. */
import { Console, Effect } from "effect"
import { Command } from "effect/cli"
import { listBottles } from "../programs/bottles.ts"
import { jsonFlag } from "./flags.ts"
import { table } from "./render.ts"

export const ls = Command.make("ls", { json: jsonFlag }, Effect.fn(function*({ json }) {
  const rows = yield* listBottles()
  if (json) return yield* Console.log(JSON.stringify(rows, null, 2))
  if (rows.length === 0) return yield* Console.log("no bottles (start one with `bottle start <agent>`)")
  // VOLUMES: what `stop` keeps for `resume` (workspace, home); `stop --purge` removes them.
  yield* Console.log(table(["NAME", "AGENT", "BACKEND", "STATUS", "VOLUMES", "CREATED"], rows.map((r) => [r.slug, r.agent, r.backend, r.status, r.volumes.length > 0 ? `${r.volumes.length} kept` : "-", r.createdAt])))
})).pipe(Command.withDescription("List bottles and their status"))
