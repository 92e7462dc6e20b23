/**
 * The public module as a script uses it: `plan` + `launch` (+ `run`, `stop`, `ls`) composed on
 * the fake layers of `bot-bottle/testing`, imported from the package's own exports only (no
 * path into src/). The bottle is a scoped resource: closing the scope (success, failure,
 * interruption) tears it down and deletes its state; what `bottle start --yes` refuses is
 * refused before anything is acquired.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber } from "effect"
import { type BottleHandle, launch, ls, plan, run, stop } from "bot-bottle"
import { makeClient } from "bot-bottle/promise"
import { BottleTest, FakeEngine } from "bot-bottle/testing"

const manifestYaml = `
agents:
  worker:
    bottle: box
    command: ["sh", "-c", "echo working"]
  claude:
    bottle: box
  leaky:
    bottle: leaky
bottles:
  box:
    egress:
      routes:
        - host: api.example.com
  leaky:
    egress:
      routes:
        - host: collector.example.net
          auth: { token_env: SOME_TOKEN }
`

const project = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bb-lib-"))
  fs.writeFileSync(path.join(dir, "bottle.yaml"), manifestYaml)
  return dir
}

const planFor = (agent: string, name: string, env: Record<string, string> = {}) => plan({ agent, cwd: project(), name, env })

/** What a test needs to know about the fake engine once the program is done. */
const engineState = Effect.gen(function*() {
  const engine = yield* FakeEngine
  return { events: yield* engine.events, running: yield* engine.running, bottles: fs.existsSync(path.join(engine.stateDir, "bottles")) ? fs.readdirSync(path.join(engine.stateDir, "bottles")) : [] }
})

describe("bot-bottle (public module) on BottleTest", () => {
  it.effect("plan + launch: a handle whose exec runs in the bottle; the scope's close tears it down and deletes its state", () =>
    Effect.gen(function*() {
      const p = yield* planFor("worker", "lib-one")
      const seen = yield* Effect.scoped(Effect.gen(function*() {
        const bottle: BottleHandle = yield* launch(p)
        const result = yield* bottle.exec(["echo", "hi"], { env: { TASK: "t1" } })
        const during = yield* engineState
        const rows = yield* ls()
        return { result, during, rows }
      }))
      assert.deepStrictEqual(seen.result, { stdout: "out:echo hi:t1", stderr: "", exitCode: 0 })
      assert.deepStrictEqual(seen.during.running, ["lib-one"])
      assert.deepStrictEqual(seen.rows.map((r) => [r.slug, r.status]), [["lib-one", "running"]])
      const after = yield* engineState
      assert.deepStrictEqual(after.running, [])
      assert.deepStrictEqual(after.bottles, [])
      assert.deepStrictEqual(after.events.filter((e) => e.startsWith("acquire") || e.startsWith("release") || e.startsWith("exec") || e.startsWith("remove")), [
        "acquire network lib-one",
        "acquire bundle lib-one",
        "acquire sandbox lib-one",
        "exec lib-one echo hi",
        "remove lib-one"
      ])
    }).pipe(Effect.provide(BottleTest({ exec: (c) => ({ stdout: `out:${c.argv.join(" ")}:${c.env["TASK"] ?? ""}`, stderr: "", exitCode: 0 }) }))))

  it.effect("a failure inside the scope still tears the bottle down", () =>
    Effect.gen(function*() {
      const p = yield* planFor("worker", "lib-fail")
      const exit = yield* Effect.scoped(Effect.gen(function*() {
        yield* launch(p)
        return yield* Effect.fail("the script's own failure" as const)
      })).pipe(Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
      const after = yield* engineState
      assert.deepStrictEqual(after.running, [])
      assert.deepStrictEqual(after.bottles, [])
    }).pipe(Effect.provide(BottleTest())))

  it.effect("interrupting the script while the bottle runs tears it down", () =>
    Effect.gen(function*() {
      const p = yield* planFor("worker", "lib-int")
      const fiber = yield* Effect.scoped(Effect.gen(function*() {
        yield* launch(p)
        return yield* Effect.never
      })).pipe(Effect.forkChild)
      // Bounded by yields, not time (the test clock never advances).
      for (let i = 0; i < 100_000 && (yield* (yield* FakeEngine).running).length === 0; i++) yield* Effect.yieldNow
      assert.deepStrictEqual(yield* (yield* FakeEngine).running, ["lib-int"])
      yield* Fiber.interrupt(fiber)
      const after = yield* engineState
      assert.deepStrictEqual(after.running, [])
      assert.deepStrictEqual(after.bottles, [])
    }).pipe(Effect.provide(BottleTest())))

  it.effect("run: the agent's command headless, its exit code, output, $BOTTLE_PROMPT and egress summary; torn down after", () =>
    Effect.gen(function*() {
      const p = yield* planFor("worker", "lib-run")
      const result = yield* run(p, { prompt: "count the files" })
      assert.strictEqual(result.exitCode, 3)
      assert.strictEqual(result.output, "task: count the files\n")
      assert.deepStrictEqual(result.egress, {
        requests: 4,
        allowed: { count: 2, hosts: [{ host: "api.example.com", count: 2 }] },
        denied: { count: 2, hosts: [{ host: "evil.example.org", count: 1 }, { host: "pastebin.com", count: 1 }] }
      })
      const after = yield* engineState
      assert.deepStrictEqual(after.events.filter((e) => e.startsWith("exec")), ["exec lib-run sh -c echo working"])
      assert.deepStrictEqual(after.running, [])
      assert.deepStrictEqual(after.bottles, [])
    }).pipe(Effect.provide(BottleTest({
      exec: (c) => {
        c.audit({ host: "api.example.com", decision: "allow" })
        c.audit({ host: "api.example.com", decision: "allow" })
        c.audit({ host: "pastebin.com", decision: "deny" })
        c.audit({ host: "evil.example.org", decision: "dlp-block" })
        return { stdout: `task: ${c.env["BOTTLE_PROMPT"]}\n`, stderr: "", exitCode: 3 }
      }
    }))))

  it.effect("run with Claude Code: `claude -p <prompt>`; without a prompt it is refused before anything is acquired", () =>
    Effect.gen(function*() {
      const p = yield* planFor("claude", "lib-claude", { CLAUDE_CODE_OAUTH_TOKEN: "x" })
      const refused = yield* run(p).pipe(Effect.flip)
      assert.strictEqual(refused._tag, "BottleRefused")
      assert.include(refused.message, "needs a task")
      assert.deepStrictEqual((yield* engineState).events, [])
      yield* run(p, { prompt: "fix it" })
      const execs = (yield* engineState).events.filter((e) => e.startsWith("exec"))
      assert.deepStrictEqual(execs, ["exec lib-claude claude -p fix it"])
    }).pipe(Effect.provide(BottleTest())))

  it.effect("a credential grant nobody approved, or a missing token, is refused before anything is acquired", () =>
    Effect.gen(function*() {
      const noToken = yield* launch(yield* planFor("leaky", "lib-leak")).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(noToken._tag, "BottleRefused")
      assert.include(noToken.message, "$SOME_TOKEN")
      const env = { SOME_TOKEN: "secret" }
      const grant = yield* launch(yield* planFor("leaky", "lib-leak", env), { env }).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(grant._tag, "BottleRefused")
      assert.include(grant.message, "credential grant not approved: $SOME_TOKEN → collector.example.net")
      const after = yield* engineState
      assert.deepStrictEqual(after.events, [])
      assert.deepStrictEqual(after.bottles, [])
    }).pipe(Effect.provide(BottleTest())))

  it.effect("keep: the bottle outlives its scope until `stop`; a second bottle of the same name is refused meanwhile", () =>
    Effect.gen(function*() {
      const p = yield* planFor("worker", "lib-keep")
      yield* Effect.scoped(launch(p, { keep: true }))
      assert.deepStrictEqual((yield* engineState).running, ["lib-keep"])
      const again = yield* Effect.scoped(launch(p)).pipe(Effect.flip)
      assert.include(again.message, "already exists")
      const leftovers = yield* stop("lib-keep", { purge: true })
      assert.deepStrictEqual(leftovers, [])
      const after = yield* engineState
      assert.deepStrictEqual(after.running, [])
      assert.deepStrictEqual(after.bottles, [])
    }).pipe(Effect.provide(BottleTest())))

  it.effect("handle.stop tears down now, once; the scope's close then does nothing more", () =>
    Effect.gen(function*() {
      const p = yield* planFor("worker", "lib-stop")
      yield* Effect.scoped(Effect.gen(function*() {
        const bottle = yield* launch(p)
        assert.deepStrictEqual(yield* bottle.stop, [])
        assert.deepStrictEqual(yield* bottle.stop, [])
        const gone = yield* bottle.exec(["true"]).pipe(Effect.flip)
        assert.strictEqual(gone._tag, "BackendError")
      }))
      const after = yield* engineState
      assert.deepStrictEqual(after.events.filter((e) => e.startsWith("remove")), ["remove lib-stop"])
      assert.deepStrictEqual(after.bottles, [])
    }).pipe(Effect.provide(BottleTest())))
})

describe("a teardown that fails", () => {
  it.effect("is never swallowed: handle.stop returns it as a typed error; the scope's release raises it as a defect; the state is kept for `bottle stop`", () =>
    Effect.gen(function*() {
      const typed = yield* Effect.scoped(Effect.gen(function*() {
        const bottle = yield* launch(yield* planFor("worker", "lib-broken-a"))
        return yield* bottle.stop.pipe(Effect.flip)
      }))
      assert.strictEqual(typed._tag, "BackendError")
      assert.include(typed.message, "engine says no")
      const exit = yield* Effect.scoped(launch(yield* planFor("worker", "lib-broken-b"))).pipe(Effect.exit)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(String(Cause.squash(exit.cause)), "engine says no")
      const after = yield* engineState
      assert.deepStrictEqual(after.bottles.sort(), ["lib-broken-a", "lib-broken-b"])
    }).pipe(Effect.provide(BottleTest({ removeFails: "engine says no" }))))
})

describe("bot-bottle/promise on BottleTest", () => {
  it("withBottle: the handle as Promises; torn down when `use` settles, also when it rejects", async () => {
    const client = makeClient(BottleTest({ exec: (c) => ({ stdout: c.argv.join(" "), stderr: "", exitCode: 0 }) }))
    try {
      const p = await client.plan({ agent: "worker", cwd: project(), name: "promise-one", env: {} })
      const out = await client.withBottle(p, async (b) => {
        const rows = await client.ls()
        return { exec: await b.exec(["echo", "hi"]), rows: rows.map((r) => r.slug) }
      })
      assert.deepStrictEqual(out, { exec: { stdout: "echo hi", stderr: "", exitCode: 0 }, rows: ["promise-one"] })
      assert.deepStrictEqual(await client.ls(), [])
      const failed = await client.withBottle(p, () => Promise.reject(new Error("the script's own failure"))).catch((e: Error) => e.message)
      assert.strictEqual(failed, "the script's own failure")
      assert.deepStrictEqual(await client.ls(), [])
      const refused = await client.run(await client.plan({ agent: "claude", cwd: project(), name: "promise-claude", env: {} })).catch((e: { _tag: string }) => e._tag)
      assert.strictEqual(refused, "BottleRefused")
    } finally {
      await client.dispose()
    }
  })
})
