/**
 * The y/N questions (src/cli/confirm.ts) on a scripted terminal: only `y` is yes; Enter, `n`,
 * Ctrl-C and a closed stdin are no; `--yes` skips the start question and never answers a
 * credential grant's; without a terminal nothing is asked.
 */
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { type Cause, Effect, Layer, Option, Queue, Terminal } from "effect"
import { askConsent, confirm, type ConsentRequest } from "../src/cli/confirm.ts"

type Key = Terminal.UserInput
const key = (name: string, input: string | undefined = name, ctrl = false): Key => ({
  input: Option.fromUndefinedOr(input),
  key: { name, ctrl, meta: false, shift: false }
})
const ENTER = key("return", "\r")
/** What NodeTerminal does on Ctrl-C: the key, then the end of input. */
const CTRL_C = key("c", "\u0003", true)

/**
 * A terminal that types `keys`, then ends its input when `end` (a closed stdin), and records
 * what is displayed and whether input was read at all.
 */
const scripted = (keys: ReadonlyArray<Key>, end: boolean) => {
  const shown: Array<string> = []
  let read = false
  const terminal = Terminal.make({
    columns: Effect.succeed(80),
    rows: Effect.succeed(24),
    size: Effect.die(new Error("scripted terminal: size")),
    readInput: Effect.gen(function*() {
      read = true
      const q = yield* Queue.make<Key, Cause.Done>()
      yield* Queue.offerAll(q, keys)
      if (end) yield* Queue.end(q)
      return q
    }),
    readLine: Effect.die(new Error("scripted terminal: readLine")),
    display: (text) => Effect.sync(() => void shown.push(text))
  })
  const layer = Layer.mergeAll(Layer.succeed(Terminal.Terminal, terminal), NodeFileSystem.layer, NodePath.layer)
  return { layer, shown, wasRead: () => read, text: () => shown.join("").replace(/\u001b\[[0-9;?]*[A-Za-z]/g, "") }
}

const answer = (keys: ReadonlyArray<Key>, end = false) =>
  Effect.gen(function*() {
    const t = scripted(keys, end)
    const yes = yield* confirm("Start bottle demo?").pipe(Effect.provide(t.layer))
    return { yes, text: t.text() }
  })

describe("confirm", () => {
  it.effect("asks `question [y/N]`; y is yes", () =>
    Effect.gen(function*() {
      const r = yield* answer([key("y")])
      assert.isTrue(r.yes)
      assert.include(r.text, "Start bottle demo? [y/N]")
    }))

  it.effect("n is no; Enter takes the default, no", () =>
    Effect.gen(function*() {
      assert.isFalse((yield* answer([key("n")])).yes)
      assert.isFalse((yield* answer([ENTER])).yes)
    }))

  it.effect("any other key is not an answer: it beeps, and Enter then is no", () =>
    Effect.gen(function*() {
      assert.isFalse((yield* answer([key("x"), key("space", " "), ENTER])).yes)
    }))

  it.effect("a closed stdin (no answer at all) is no", () =>
    Effect.gen(function*() {
      assert.isFalse((yield* answer([], true)).yes)
    }))

  it.effect("Ctrl-C at the question is no", () =>
    Effect.gen(function*() {
      assert.isFalse((yield* answer([CTRL_C], true)).yes)
    }))
})

describe("askConsent", () => {
  const ask = (request: Omit<ConsentRequest, "question" | "before">, keys: ReadonlyArray<Key>) =>
    Effect.gen(function*() {
      const t = scripted(keys, true)
      const consent = yield* askConsent({ ...request, question: "Go?", before: Effect.sync(() => void t.shown.push("WARNING\n")) }).pipe(Effect.provide(t.layer))
      return { consent, text: t.text(), read: t.wasRead() }
    })

  it.effect("--yes starts without asking: nothing shown, no input read", () =>
    Effect.gen(function*() {
      const r = yield* ask({ yes: true, interactive: true, grant: false }, [key("n")])
      assert.strictEqual(r.consent, "given")
      assert.strictEqual(r.text, "")
      assert.isFalse(r.read)
    }))

  it.effect("--yes never approves a credential grant, even at a terminal where y would be typed", () =>
    Effect.gen(function*() {
      const r = yield* ask({ yes: true, interactive: true, grant: true }, [key("y")])
      assert.strictEqual(r.consent, "needs-terminal")
      assert.strictEqual(r.text, "", "neither the warning nor the question is shown")
      assert.isFalse(r.read)
    }))

  it.effect("without a terminal nothing is asked, grant or not", () =>
    Effect.gen(function*() {
      for (const grant of [false, true]) {
        const r = yield* ask({ yes: false, interactive: false, grant }, [key("y")])
        assert.strictEqual(r.consent, "needs-terminal")
        assert.isFalse(r.read)
      }
    }))

  it.effect("a grant at a terminal: the warning, then the question; y approves, anything else declines", () =>
    Effect.gen(function*() {
      const yes = yield* ask({ yes: false, interactive: true, grant: true }, [key("y")])
      assert.strictEqual(yes.consent, "given")
      assert.match(yes.text, /^WARNING\n[^]*Go\? \[y\/N\]/)
      assert.strictEqual((yield* ask({ yes: false, interactive: true, grant: true }, [ENTER])).consent, "declined")
      assert.strictEqual((yield* ask({ yes: false, interactive: true, grant: true }, [])).consent, "declined")
    }))
})
