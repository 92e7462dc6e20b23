/**
 * What a plan says about supervise and `on_unrouted: ask`: the supervise daemon runs; the
 * agent gets MCP_SUPERVISE_URL on the bundle's address (also in NO_PROXY, and following a
 * re-leased subnet); Claude Code gets `--permission-prompt-tool` only with
 * `permission_prompts`; `supervise: true` stays valid; the rendered plan shows all of it; the
 * provider's user-scope config names the server.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { make } from "../src/layers/StateStore.ts"
import { parseManifest } from "../src/programs/loadManifest.ts"
import { prepare } from "../src/programs/prepare.ts"
import { withSubnet } from "../src/programs/subnetLease.ts"
import { mcpUserConfig } from "../src/providers/claude.ts"
import { renderPlan } from "../src/cli/render.ts"
import { StateStore } from "../src/services/StateStore.ts"

const planOf = (bottle: string) =>
  Effect.gen(function*() {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "bb-sv-plan-"))
    const yaml = `agents:\n  a: { bottle: b }\nbottles:\n  b:\n${bottle}`
    const loaded = yield* parseManifest(yaml, path.join(cwd, "bottle.yaml"), cwd)
    return yield* prepare({ loaded, agent: "a", cwd, env: {} })
  }).pipe(Effect.provide(Layer.succeed(StateStore, make(fs.mkdtempSync(path.join(os.tmpdir(), "bb-sv-plan-state-"))))))

describe("plan: supervise", () => {
  it.effect("supervise: true runs the daemon and gives the agent the MCP URL, outside the proxy; no permission-prompt tool", () =>
    Effect.gen(function*() {
      const plan = yield* planOf("    supervise: true\n")
      assert.include(plan.daemons, "supervise")
      const url = `http://${plan.network.bundleIp}:8765/mcp`
      assert.strictEqual(plan.env["MCP_SUPERVISE_URL"], url)
      assert.include(plan.env["NO_PROXY"]!.split(","), plan.network.bundleIp)
      assert.notInclude(plan.command, "--permission-prompt-tool")
      assert.notInclude(plan.command, "--mcp-config")
      const shown = renderPlan(plan, "bottle.yaml")
      assert.include(shown, `MCP server "supervise" at ${url}`)
      assert.include(shown, `MCP_SUPERVISE_URL=${url}`)
      assert.deepStrictEqual(mcpUserConfig(url), { mcpServers: { supervise: { type: "http", url } } })
    }))

  it.effect("supervise: { permission_prompts: true } adds Claude Code's --permission-prompt-tool", () =>
    Effect.gen(function*() {
      const plan = yield* planOf("    supervise: { permission_prompts: true }\n")
      const i = plan.command.indexOf("--permission-prompt-tool")
      assert.isAbove(i, 0)
      assert.strictEqual(plan.command[i + 1], "mcp__supervise__permission_prompt")
      assert.include(renderPlan(plan, "bottle.yaml"), "permission prompts go to the queue")
      const timed = yield* planOf("    supervise: { expire_minutes: 5 }\n")
      assert.strictEqual(timed.superviseExpireMinutes, 5)
      assert.include(renderPlan(timed, "bottle.yaml"), "expire after 5 min")
    }))

  it.effect("without supervise: no daemon, no URL, NO_PROXY as before", () =>
    Effect.gen(function*() {
      const plan = yield* planOf("    env: {}\n")
      assert.notInclude(plan.daemons, "supervise")
      assert.isUndefined(plan.env["MCP_SUPERVISE_URL"])
      assert.strictEqual(plan.env["NO_PROXY"], "localhost,127.0.0.1,::1")
    }))

  it.effect("a re-leased subnet moves the MCP URL and its NO_PROXY entry with the bundle", () =>
    Effect.gen(function*() {
      const plan = yield* planOf("    supervise: true\n")
      const moved = withSubnet(plan, plan.network.subnetIndex + 7)
      assert.strictEqual(moved.env["MCP_SUPERVISE_URL"], `http://${moved.network.bundleIp}:8765/mcp`)
      assert.include(moved.env["NO_PROXY"]!.split(","), moved.network.bundleIp)
      assert.notInclude(moved.env["NO_PROXY"]!.split(","), plan.network.bundleIp)
    }))

  it.effect("egress on_unrouted: ask reaches the plan and is shown", () =>
    Effect.gen(function*() {
      const plan = yield* planOf("    egress: { routes: [], on_unrouted: ask }\n")
      assert.strictEqual(plan.egress.onUnrouted, "ask")
      assert.include(renderPlan(plan, "bottle.yaml"), "unrouted hosts: ASK")
      const bad = yield* Effect.flip(planOf("    egress: { routes: [], on_unrouted: maybe }\n"))
      assert.include(bad.message, "on_unrouted")
    }))
})
