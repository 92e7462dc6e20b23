/** `bottle stop <bottle>`: remove its containers, networks, volumes; revoke deploy keys; free leases. */
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { teardown } from "../programs/bottles.ts"
import { bottleArg } from "./bottleArg.ts"
import { CliFailure } from "./failure.ts"

export const stop = Command.make(
  "stop",
  {
    bottle: bottleArg,
    purge: Flag.Boolean("purge").pipe(Flag.withDescription("Also delete the bottle's state (plan, CA, audit log)"), Flag.withDefault(false))
  },
  Effect.fn(function*({ bottle, purge }) {
    const problems = yield* teardown(bottle, { purge, env: process.env }).pipe(
      Effect.catchTag("DockerError", (e) => new CliFailure({ message: `cannot stop bottle ${bottle}: ${e.message}` }))
    )
    if (problems.length > 0) {
      return yield* new CliFailure({ message: `bottle ${bottle} stopped, but these remain (\`bottle stop ${bottle}\` again, or remove them by hand):\n  ${problems.join("\n  ")}` })
    }
    yield* Console.error(`bottle ${bottle} stopped${purge ? " and purged" : " (state kept: `bottle resume` restarts it, `--purge` deletes it)"}`)
  })
).pipe(Command.withDescription("Stop a bottle and remove everything it runs"))
