import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bottleRoutesFile } from "../../src/cli/egress.ts"
import { make, stateRoot } from "../../src/layers/StateStore.ts"
import { parseListen } from "../../bundle/egress/config.ts"
import { bottleSync, NO_ENGINE, prepareCli, tmp } from "../support/cli.ts"

describe("egress CLI", () => {
  it.effect("--listen HOST:PORT", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* parseListen("127.0.0.1:8080"), { host: "127.0.0.1", port: 8080 })
      assert.deepStrictEqual(yield* parseListen("[::1]:0"), { host: "::1", port: 0 })
      assert.deepStrictEqual(yield* parseListen(":3128"), { host: "0.0.0.0", port: 3128 })
      const bad = yield* Effect.flip(parseListen("localhost"))
      assert.strictEqual(bad.reason._tag, "BadArgument")
      yield* Effect.flip(parseListen("h:99999"))
    }))

  it("a bottle's routes file lives under the state root", () => {
    assert.strictEqual(bottleRoutesFile(make(stateRoot({ BOTTLE_STATE_DIR: "/s" })), "demo"), path.join("/s", "bottles", "demo", "egress", "routes.yaml"))
    assert.strictEqual(bottleRoutesFile(make(stateRoot({ XDG_STATE_HOME: "/x" })), "demo"), path.join("/x", "bot-bottle", "bottles", "demo", "egress", "routes.yaml"))
  })

  it("`bottle egress allow|deny` on a bottle that does not exist says so in one line, and writes nothing", () => {
    const cliDir = prepareCli()
    const state = tmp("bb-egress-cli-")
    for (const args of [["egress", "allow", "nope", "api.example.com"], ["egress", "deny", "nope", "api.example.com"]]) {
      const r = bottleSync(cliDir, args, { ...NO_ENGINE, BOTTLE_STATE_DIR: state })
      assert.strictEqual(r.status, 1)
      assert.strictEqual(r.stderr.trim(), 'bottle: no bottle named "nope" (see `bottle ls`)')
    }
    assert.deepStrictEqual(fs.readdirSync(state), [])
  }, 180_000)
})
