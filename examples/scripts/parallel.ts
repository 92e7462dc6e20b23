/**
 * N bottles in parallel from one manifest, one task each: every result (exit code, output,
 * egress summary) collected and printed as one JSON array. Each bottle is a scoped resource:
 * it is torn down (deploy keys revoked, state deleted) when its task ends, fails, or when the
 * script is interrupted (Ctrl-C: NodeRuntime.runMain interrupts, every scope closes).
 *
 *   node examples/scripts/parallel.ts "list the files" "count the lines" "fail on purpose"
 *   node examples/scripts/parallel.ts --agent claude "review src/parse.ts" "review src/emit.ts"
 *
 * Options: --manifest FILE (default: tasks.yaml beside this script), --agent NAME (default
 * worker). Exit code 0 when every task exited 0, else 1.
 */
import * as crypto from "node:crypto"
import * as path from "node:path"
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Exit } from "effect"
import { BottleLive, plan, run } from "bot-bottle"

const args = process.argv.slice(2)
const option = (name: string, fallback: string) => {
  const i = args.indexOf(name)
  return i === -1 ? fallback : args.splice(i, 2)[1] ?? fallback
}
const manifest = option("--manifest", path.join(import.meta.dirname, "tasks.yaml"))
const agent = option("--agent", "worker")
const tasks = args
const batch = crypto.randomBytes(3).toString("hex")

/** One task: plan a bottle of its own, run the agent headless on the task, tear it down. */
const oneTask = (task: string, i: number) =>
  Effect.gen(function*() {
    const bottle = yield* plan({ agent, manifest, name: `${agent}-${batch}-${i + 1}` })
    return yield* run(bottle, { prompt: task })
  })

const main = Effect.gen(function*() {
  if (tasks.length === 0) return yield* Effect.fail(new Error("usage: parallel.ts [--manifest FILE] [--agent NAME] TASK..."))
  // Every task runs to its end: one failing (its agent, or its bottle) does not stop the others.
  const exits = yield* Effect.forEach(tasks, (task, i) => Effect.exit(oneTask(task, i)), { concurrency: "unbounded" })
  const results = exits.map((exit, i) =>
    Exit.isSuccess(exit)
      ? { task: tasks[i], slug: exit.value.slug, exitCode: exit.value.exitCode, output: exit.value.output, stderr: exit.value.stderr, durationMs: exit.value.durationMs, egress: exit.value.egress }
      : { task: tasks[i], error: Cause.squash(exit.cause) instanceof Error ? (Cause.squash(exit.cause) as Error).message : String(Cause.squash(exit.cause)) }
  )
  yield* Console.log(JSON.stringify(results, null, 2))
  if (results.some((r) => r.exitCode !== 0)) process.exitCode = 1
})

NodeRuntime.runMain(main.pipe(Effect.provide(BottleLive)))
