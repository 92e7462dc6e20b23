/**
 * `bottle stop <bottle>`: revoke its deploy keys, remove its containers, networks, volumes;
 * free leases. Every failure is shown (one line each, revocation first); the state is kept
 * whenever something is left to retry.
 */
import { Cause, Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { teardown } from "../programs/bottles.ts"
import type { LaunchError } from "../programs/launch.ts"
import type { BackendError } from "../services/Backend.ts"
import type { StateError } from "../services/StateStore.ts"
import { bottleArg, onBackendOf } from "./bottleArg.ts"
import { CliFailure } from "./failure.ts"
import { jsonFlag } from "./flags.ts"

const explain = (bottle: string, e: LaunchError | StateError | BackendError): string => {
  switch (e._tag) {
    case "BackendError":
      return `cannot stop bottle ${bottle}: ${e.message}${e.reason._tag === "Unavailable" ? ` (its state is kept: \`bottle stop ${bottle}\` again once the engine is back)` : ""}`
    case "StateError":
      return e.reason._tag === "Corrupt"
        ? `cannot revoke bottle ${bottle}'s deploy keys: ${e.message}; repair it and \`bottle stop ${bottle}\` again, or revoke its keys by hand on the git host`
        : e.message
    case "LaunchError":
      return e.message
  }
}

export const stop = Command.make(
  "stop",
  {
    bottle: bottleArg,
    purge: Flag.Boolean("purge").pipe(Flag.withDescription("Also delete the bottle's state (plan, CA, audit log)"), Flag.withDefault(false)),
    json: jsonFlag
  },
  Effect.fn(function*({ bottle, purge, json }) {
    const problems = yield* teardown(bottle, {
      purge,
      env: process.env,
      onRevoked: (k) => process.stderr.write(`revoked deploy key ${k.repo}#${k.id}\n`)
    }).pipe(
      onBackendOf(bottle),
      Effect.catchCause((cause): Effect.Effect<never, CliFailure | LaunchError | StateError | BackendError> => {
        const errors = cause.reasons.filter(Cause.isFailReason).map((r) => r.error)
        return errors.length === 0 ? Effect.failCause(cause) : Effect.fail(new CliFailure({ message: errors.map((e) => explain(bottle, e)).join("\n") }))
      })
    )
    if (problems.length > 0) {
      return yield* new CliFailure({ message: `bottle ${bottle} stopped, but these remain (\`bottle stop ${bottle}\` again, or remove them by hand):\n  ${problems.join("\n  ")}` })
    }
    if (json) yield* Console.log(JSON.stringify({ bottle, stopped: true, purged: purge }))
    yield* Console.error(`bottle ${bottle} stopped${purge ? " and purged" : " (state kept: `bottle resume` restarts it, `--purge` deletes it)"}`)
  })
).pipe(
  Command.withDescription("Stop a bottle and remove everything it runs"),
  Command.withExamples([
    { command: "bottle stop claude-1a2b3c", description: "Stop it; its state stays for `bottle resume` and `bottle logs`" },
    { command: "bottle stop claude-1a2b3c --purge", description: "Stop it and delete its state" }
  ])
)
