import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bottleRoutesFile } from "../../src/cli/egress.ts"
import { make, stateRoot } from "../../src/layers/StateStore.ts"
import { parseListen } from "../../bundle/egress/config.ts"

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
})
