/**
 * A headless run: a fresh bottle, the agent's command run once without a person at the
 * terminal, its exit code, output and egress summary collected, and the bottle torn down
 * (deploy keys revoked, state deleted) whatever happens, unless `keep`. `bottle run` and the
 * public module's `run` are this program.
 *
 * How the agent is run headless: Claude Code (the agent's command is `claude`) gets
 * `-p <prompt>`, beside the bottle's system prompt and skills; any other command runs as the
 * manifest wrote it. Either way the task text is in `$BOTTLE_PROMPT` for the command to read.
 */
import * as path from "node:path"
import { Effect } from "effect"
import type { BottlePlan } from "../schema/BottlePlan.ts"
import { BottleRefused, type EgressSummary, openBottle, type OpenOptions, summarizeEgress } from "./session.ts"

/** A task is a prompt, not a document: beyond this it could not travel as one argument. */
export const MAX_PROMPT_BYTES = 100_000

/** How long the egress daemon may hold an audit line back, with room to spare (its FLUSH_MS is 20). */
const AUDIT_SETTLE_MS = 200

export interface RunOptions extends OpenOptions {
  /** The task. Required for Claude Code; `$BOTTLE_PROMPT` for a command agent. */
  readonly prompt?: string | undefined
  /** "capture" (default): stdout and stderr collected into the result; "inherit": streamed on this process's, not collected. */
  readonly output?: "capture" | "inherit"
}

export interface RunResult {
  readonly slug: string
  readonly exitCode: number
  /** The agent's stdout ("" when streamed). */
  readonly output: string
  /** The agent's stderr ("" when streamed). */
  readonly stderr: string
  /** How long the agent's command ran (launch and teardown not included). */
  readonly durationMs: number
  readonly egress: EgressSummary
}

const isClaudeCode = (plan: BottlePlan) => plan.provider === "claude" && path.posix.basename(plan.command[0] ?? "") === "claude"

/** The argv a headless run executes, and the env it adds; refuses a Claude Code run without a task. */
export const headlessCommand = (plan: BottlePlan, prompt: string | undefined): Effect.Effect<{ readonly argv: ReadonlyArray<string>; readonly env: Record<string, string> }, BottleRefused> => {
  const refuse = (message: string) => Effect.fail(new BottleRefused({ slug: plan.slug, message }))
  if (prompt !== undefined && Buffer.byteLength(prompt) > MAX_PROMPT_BYTES) return refuse(`the prompt is ${Buffer.byteLength(prompt)} bytes; at most ${MAX_PROMPT_BYTES}`)
  const env: Record<string, string> = prompt === undefined ? {} : { BOTTLE_PROMPT: prompt }
  if (!isClaudeCode(plan)) return Effect.succeed({ argv: plan.command, env })
  if (prompt === undefined || prompt.trim() === "") return refuse(`agent ${plan.agent} runs Claude Code, which needs a task: give --prompt TEXT or --prompt-file FILE`)
  return Effect.succeed({ argv: [...plan.command, "-p", prompt], env })
}

export const runAgent = Effect.fn("runAgent")(function*(plan: BottlePlan, options: RunOptions = {}) {
  const command = yield* headlessCommand(plan, options.prompt)
  return yield* Effect.scoped(Effect.gen(function*() {
    const bottle = yield* openBottle(plan, options)
    const t0 = Date.now()
    const { exitCode, stdout, stderr } = options.output === "inherit"
      ? { exitCode: yield* bottle.attach(command.argv, { env: command.env }), stdout: "", stderr: "" }
      : yield* bottle.exec(command.argv, { env: command.env })
    const durationMs = Date.now() - t0
    // Read before the teardown deletes the state it lives in, once the egress daemon has
    // written what it holds back (an `allow` line waits up to 20 ms for others to batch with,
    // bundle/egress/audit.ts; a refusal is written at once). Wall-clock time: another process's
    // write. An unreadable log is not the run's failure: the summary is then empty, and says so
    // in the log.
    yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, AUDIT_SETTLE_MS)))
    const egress = yield* bottle.audit.pipe(
      Effect.map(summarizeEgress),
      Effect.catch((e) => Effect.logWarning(e.message).pipe(Effect.as(summarizeEgress([]))))
    )
    const result: RunResult = { slug: plan.slug, exitCode, output: stdout, stderr, durationMs, egress }
    return result
  }))
})
