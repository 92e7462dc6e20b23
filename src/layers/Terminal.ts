/**
 * The terminal `bottle` asks its questions on: the process's (Node's readline, raw mode only
 * while a key is read, ended by Esc, Ctrl-C, Ctrl-D or the end of stdin), with everything it
 * displays written to stderr, beside the plan: stdout stays the command's output (`bottle
 * start -d` prints the slug there for scripts).
 */
import { NodeTerminal } from "@effect/platform-node"
import { Effect, Layer, Terminal } from "effect"
import { badArgument } from "effect/PlatformError"

export const layer: Layer.Layer<Terminal.Terminal> = Layer.effect(
  Terminal.Terminal,
  Effect.gen(function*() {
    const base = yield* NodeTerminal.make()
    return Terminal.make({
      columns: Effect.sync(() => process.stderr.columns ?? 0),
      rows: Effect.sync(() => process.stderr.rows ?? 0),
      size: base.size,
      readInput: base.readInput,
      readLine: base.readLine,
      display: (text) =>
        Effect.callback<void, ReturnType<typeof badArgument>>((resume) => {
          process.stderr.write(text, (err) =>
            resume(err ? Effect.fail(badArgument({ module: "Terminal", method: "display", description: "Failed to write to stderr", cause: err })) : Effect.void))
        })
    })
  })
)
