/**
 * `bottle cp <bottle>:<path> <dest>` and `bottle cp <src> <bottle>:<path>`: files between the
 * host and a running bottle's sandbox (relative sandbox paths are in its workspace). Out of the
 * bottle, nothing on the host is overwritten (the destination must not exist) and links are
 * copied as links, never followed; into it, what is copied belongs to the agent's user.
 */
import { Console, Effect } from "effect"
import { Argument, Command } from "effect/cli"
import { Backend } from "../services/Backend.ts"
import { onBackend, savedPlan } from "./bottleArg.ts"
import { CliFailure } from "./failure.ts"
import { jsonFlag } from "./flags.ts"

/** `<bottle>:<path>`: a bottle name (as `--name` allows) before the first colon. */
const inBottle = (arg: string): { readonly bottle: string; readonly path: string } | undefined => {
  const m = /^([a-z][a-z0-9-]{0,62}):(.*)$/s.exec(arg)
  return m ? { bottle: m[1]!, path: m[2] === "" ? "." : m[2]! } : undefined
}

/** Fails with one line (and how to bring it back) unless the bottle's sandbox runs. */
export const requireRunning = (bottle: string) =>
  Effect.gen(function*() {
    const [found] = yield* (yield* Backend).inspect(bottle).pipe(Effect.orElseSucceed(() => []))
    if (found?.status !== "running" && found?.status !== "unhealthy") {
      return yield* new CliFailure({ message: `bottle ${bottle} is not running (\`bottle resume ${bottle} --detach\` brings it back, its workspace as it was)` })
    }
  })

export const cp = Command.make(
  "cp",
  {
    source: Argument.String("source").pipe(Argument.withDescription("<bottle>:<path> or a host path")),
    dest: Argument.String("dest").pipe(Argument.withDescription("a host path or <bottle>:<path>")),
    json: jsonFlag
  },
  Effect.fn(function*({ source, dest, json }) {
    const from = inBottle(source)
    const to = inBottle(dest)
    if ((from === undefined) === (to === undefined)) {
      return yield* new CliFailure({ message: "bottle cp: exactly one side is <bottle>:<path> (e.g. bottle cp claude-1a2b3c:out.txt ./out.txt)", exitCode: 2 })
    }
    const bottle = (from ?? to)!.bottle
    const plan = yield* savedPlan(bottle)
    yield* Effect.gen(function*() {
      yield* requireRunning(bottle)
      const backend = yield* Backend
      if (from) yield* backend.copyOut(plan, from.path, dest)
      else yield* backend.copyIn(plan, source, to!.path)
    }).pipe(onBackend(plan.backend), Effect.mapError((e) => (e._tag === "BackendError" ? new CliFailure({ message: `bottle cp: ${e.message}` }) : e)))
    if (json) yield* Console.log(JSON.stringify({ bottle, source, dest }))
  })
).pipe(Command.withDescription("Copy files between the host and a bottle (example: bottle cp claude-1a2b3c:report.md ./report.md)"))
