/**
 * `bottle exec <bottle> CMD…`: run a command in the agent sandbox, as the agent's user.
 * Everything after the bottle name is the command, flags included (`bottle exec b ls -la`):
 * `execArgv` puts the `--` there before the parser sees the line; an explicit `--` still works.
 */
import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { Backend } from "../services/Backend.ts"
import { bottleArg, onBackend, savedPlan } from "./bottleArg.ts"
import { CliFailure } from "./failure.ts"

/** exec's own flags, recognised right after the bottle name too. */
const EXEC_FLAGS = new Set(["--root"])

/** Global flags that take a value as the next word (exec's own flags take none). */
const VALUE_FLAGS = new Set(["--log-level"])

/**
 * The argument list with `--` after exec's bottle name, so the command's own flags are not
 * parsed as exec's. Other commands' lines are returned unchanged.
 */
export const execArgv = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  let at = 0
  while (at < args.length && args[at]!.startsWith("-")) at += VALUE_FLAGS.has(args[at]!) ? 2 : 1
  if (args[at] !== "exec") return args
  for (let i = at + 1; i < args.length; i++) {
    const a = args[i]!
    if (a === "--") return args
    if (a.startsWith("-")) {
      if (VALUE_FLAGS.has(a)) i++
      continue
    }
    // args[i] is the bottle. exec's own flags may follow it (`exec b --root -- cmd`, as
    // before); the first other word starts the command, `--` or not.
    let j = i + 1
    while (j < args.length && EXEC_FLAGS.has(args[j]!)) j++
    return j >= args.length || args[j] === "--" ? args : [...args.slice(0, j), "--", ...args.slice(j)]
  }
  return args
}

export const exec = Command.make(
  "exec",
  {
    bottle: bottleArg,
    root: Flag.Boolean("root").pipe(Flag.withDescription("Run as root instead of the agent's user"), Flag.withDefault(false)),
    command: Argument.String("command").pipe(Argument.withDescription("The command and its arguments: everything after the bottle name"), Argument.variadic({ min: 1 }))
  },
  Effect.fn(function*({ bottle, root, command }) {
    const plan = yield* savedPlan(bottle)
    const code = yield* Effect.gen(function*() {
      const backend = yield* Backend
      const [found] = yield* backend.inspect(bottle).pipe(Effect.orElseSucceed(() => []))
      if (found?.status !== "running" && found?.status !== "unhealthy" && found?.status !== "degraded") {
        return yield* new CliFailure({ message: `bottle ${bottle} is not running (\`bottle resume ${bottle} --detach\` brings it back)` })
      }
      return yield* backend.attach(plan, command, { user: root ? "root" : "agent" })
    }).pipe(onBackend(plan.backend))
    if (code !== 0) process.exitCode = code
  })
).pipe(
  Command.withDescription("Run a command inside a running bottle's agent sandbox (everything after the bottle name is the command)"),
  Command.withExamples([
    { command: "bottle exec claude-1a2b3c ls -la", description: "List the workspace" },
    { command: "bottle exec claude-1a2b3c bash", description: "A shell in the bottle" },
    { command: "bottle exec --root claude-1a2b3c apt-get install -y jq", description: "As root" }
  ])
)
