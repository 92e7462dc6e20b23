import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bottleRoutesFile } from "../../src/cli/egress.ts"
import { DEFAULT_LIMITS, limitsFromEnv, parseListen } from "../../bundle/egress/config.ts"

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
    assert.strictEqual(bottleRoutesFile("demo", { BOTTLE_STATE_DIR: "/s" }), path.join("/s", "bottles", "demo", "egress", "routes.yaml"))
    assert.strictEqual(bottleRoutesFile("demo", { XDG_STATE_HOME: "/x" }), path.join("/x", "bot-bottle", "bottles", "demo", "egress", "routes.yaml"))
  })

  it.effect("limits from the environment: defaults, overrides, and one clear error for a bad value", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* limitsFromEnv({}), DEFAULT_LIMITS)
      const set = yield* limitsFromEnv({ BOTTLE_EGRESS_MAX_CONNECTIONS: "50", BOTTLE_EGRESS_IDLE_TIMEOUT_MS: " 2000 ", BOTTLE_EGRESS_MAX_REQUESTS: "" })
      assert.strictEqual(set.maxConnections, 50)
      assert.strictEqual(set.idleTimeoutMs, 2000)
      assert.strictEqual(set.maxRequests, DEFAULT_LIMITS.maxRequests)
      for (const bad of ["0", "-1", "1e3", "lots", "1.5"]) {
        const e = yield* Effect.flip(limitsFromEnv({ BOTTLE_EGRESS_MAX_CONNECTIONS: bad }))
        assert.strictEqual(e.reason._tag, "BadArgument")
        assert.include(e.message, "$BOTTLE_EGRESS_MAX_CONNECTIONS")
        assert.include(e.message, JSON.stringify(bad))
      }
      const slow = yield* Effect.flip(limitsFromEnv({ BOTTLE_EGRESS_HEADERS_TIMEOUT_MS: "5" }))
      assert.include(slow.message, "≥ 100")
    }))
})
