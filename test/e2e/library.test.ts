/**
 * Scripts and headless runs end to end, on a real Docker engine: `bottle run` with a command
 * agent (a shell script in the workspace) prints its output, returns its exit code and leaves
 * nothing behind, also when interrupted (SIGINT); the example script (examples/scripts/
 * parallel.ts, importing "bot-bottle" through the package's exports) runs 3 bottles side by
 * side, collects 3 results, and leaves nothing behind, also when one task fails and when it is
 * interrupted; the built package (dist/lib, dist/types) is importable and typed from outside.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { stateRootId } from "../../src/programs/bottleNames.ts"
import { baseEnv, cli, cliSpawn, docker, ensureBuilt, ROOT, subnetLeaseHolders, tempDir, waitFor } from "./support.ts"

const manifest = `
agents:
  task:
    bottle: box
    command: ["sh", "/workspace/task.sh"]
bottles:
  box:
    egress:
      routes:
        - host: allowed.invalid
    workspace: { copy_cwd: true, workdir: /workspace }
`

// The agent's command: a shell script that prints, asks egress for a host no route allows and
// for one a route allows (which does not exist: the upstream fails, 502, after egress allowed
// it), and exits with the code its task names (or hangs, to be interrupted).
const taskScript = `echo "task: $BOTTLE_PROMPT"
curl -s -o /dev/null https://denied.invalid/ || echo "denied.invalid refused"
curl -s -o /dev/null -w "allowed.invalid: %{http_code}\n" https://allowed.invalid/
case "$BOTTLE_PROMPT" in
  hang*) echo hanging; sleep 600 ;;
  exit*) exit "\${BOTTLE_PROMPT#exit }" ;;
esac
`

let cwd = ""
let stateDir = ""
let env: NodeJS.ProcessEnv = {}

/** Everything the engine has of this test's state root, and the bottles its state holds. */
const leftovers = () => {
  const f = `label=bot-bottle.root=${stateRootId(stateDir)}`
  const engine = [
    ...docker(["ps", "-a", "--filter", f, "--format", "container {{.Names}}"]).stdout.split("\n"),
    ...docker(["network", "ls", "--filter", f, "--format", "network {{.Name}}"]).stdout.split("\n"),
    ...docker(["volume", "ls", "--filter", f, "--format", "volume {{.Name}}"]).stdout.split("\n")
  ].filter((l) => l.trim() !== "")
  const bottles = fs.existsSync(path.join(stateDir, "bottles")) ? fs.readdirSync(path.join(stateDir, "bottles")) : []
  return { engine, bottles, leases: subnetLeaseHolders(stateDir) }
}
const nothing = { engine: [], bottles: [], leases: [] }

beforeAll(() => {
  ensureBuilt()
  cwd = tempDir("bb-lib-cwd-")
  stateDir = tempDir("bb-lib-state-")
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
  fs.writeFileSync(path.join(cwd, "task.sh"), taskScript)
  env = baseEnv({ BOTTLE_STATE_DIR: stateDir })
})

describe("bottle run", () => {
  it("streams the agent's output, returns its exit code, leaves nothing behind", () => {
    const r = cli(["run", "task", "--prompt", "exit 7"], { cwd, env })
    expect(r.code, r.stderr).toBe(7)
    expect(r.stdout).toBe("task: exit 7\ndenied.invalid refused\nallowed.invalid: 502\n")
    expect(leftovers()).toEqual(nothing)
    const ok = cli(["run", "task", "--prompt", "exit 0"], { cwd, env })
    expect(ok.code, ok.stderr).toBe(0)
    expect(leftovers()).toEqual(nothing)
  })

  it("--json: one result object with the output and the egress summary from the audit log", () => {
    const r = cli(["run", "task", "--prompt-file", path.join(cwd, "task.sh"), "--json"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout)
    expect(Object.keys(result).sort()).toEqual(["durationMs", "egress", "exitCode", "output", "slug", "stderr"])
    expect(result.exitCode).toBe(0)
    expect(result.output).toContain("denied.invalid refused")
    // The allowed request's audit line is one the daemon batches (written up to 20 ms later):
    // the summary waits for it.
    expect(result.egress).toEqual({
      requests: 2,
      allowed: { count: 1, hosts: [{ host: "allowed.invalid", count: 1 }] },
      denied: { count: 1, hosts: [{ host: "denied.invalid", count: 1 }] }
    })
    expect(typeof result.durationMs).toBe("number")
    expect(leftovers()).toEqual(nothing)
  })

  it("--keep leaves the bottle for inspection; `bottle stop --purge` removes it", () => {
    const r = cli(["run", "task", "--prompt", "exit 3", "--keep", "--name", "kept-run"], { cwd, env })
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toContain("bottle kept-run kept")
    expect(leftovers().bottles).toEqual(["kept-run"])
    expect(leftovers().engine.length).toBeGreaterThan(0)
    const inside = cli(["exec", "kept-run", "--", "cat", "/workspace/task.sh"], { cwd, env })
    expect(inside.stdout).toBe(taskScript)
    const stopped = cli(["stop", "kept-run", "--purge"], { cwd, env })
    expect(stopped.code, stopped.stderr).toBe(0)
    expect(leftovers()).toEqual(nothing)
  })

  it("refuses a Claude Code agent without a task, before anything is made", () => {
    const r = cli(["run", "claude"], { cwd: tempDir("bb-lib-empty-"), env: { ...env, CLAUDE_CODE_OAUTH_TOKEN: "x" } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("needs a task: give --prompt TEXT or --prompt-file FILE")
    expect(leftovers()).toEqual(nothing)
  })

  it("Ctrl-C (SIGINT) while the agent runs tears everything down", async () => {
    const child = cliSpawn(["run", "task", "--prompt", "hang"], { cwd, env })
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)))
    await waitFor(() => child.output().includes("hanging"), 300_000, "the agent to run")
    expect(leftovers().engine.length).toBeGreaterThan(0)
    child.kill("SIGINT")
    expect(await exited, child.output()).not.toBe(0)
    expect(leftovers()).toEqual(nothing)
  })
})

describe("examples/scripts/parallel.ts", () => {
  const script = path.join(ROOT, "examples", "scripts", "parallel.ts")

  it("runs 3 bottles side by side, collects 3 results, leaves nothing behind when one task fails", () => {
    const r = spawnSync(process.execPath, [script, "first", "fail second", "third"], { cwd, env, encoding: "utf8", timeout: 900_000 })
    expect(r.status, r.stderr).toBe(1)
    const results = JSON.parse(r.stdout) as Array<{ task: string; slug: string; exitCode: number; output: string; egress: { denied: { count: number } } }>
    expect(results.map((x) => [x.task, x.exitCode])).toEqual([["first", 0], ["fail second", 1], ["third", 0]])
    for (const x of results) {
      expect(x.output).toContain(`working on: ${x.task}`)
      expect(x.egress.denied.count).toBe(1)
    }
    expect(new Set(results.map((x) => x.slug)).size).toBe(3)
    expect(leftovers()).toEqual(nothing)
  })

  it("interrupted (SIGINT) while its bottles start, it tears all of them down", async () => {
    const hanging = path.join(cwd, "hanging.yaml")
    fs.writeFileSync(hanging, `agents:\n  worker:\n    bottle: b\n    command: ["sh", "-c", "sleep 600"]\nbottles:\n  b:\n    egress: { routes: [] }\n`)
    const child = spawn(process.execPath, [script, "--manifest", hanging, "a", "b", "c"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (c: Buffer) => (out += c.toString()))
    child.stderr.on("data", (c: Buffer) => (out += c.toString()))
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)))
    const agents = () => docker(["ps", "--filter", `label=bot-bottle.root=${stateRootId(stateDir)}`, "--filter", "label=bot-bottle.role=agent", "--format", "{{.Names}}"]).stdout.split("\n").filter((l) => l !== "")
    await waitFor(() => agents().length === 3, 300_000, "3 agent containers")
    child.kill("SIGINT")
    expect(await exited, out).not.toBe(0)
    expect(leftovers()).toEqual(nothing)
  })
})

describe("the built package, from outside its tree", () => {
  it("imports from dist/lib and type-checks against dist/types", () => {
    const consumer = tempDir("bb-lib-consumer-")
    fs.mkdirSync(path.join(consumer, "node_modules"))
    fs.symlinkSync(ROOT, path.join(consumer, "node_modules", "bot-bottle"))
    fs.symlinkSync(path.join(ROOT, "node_modules", "effect"), path.join(consumer, "node_modules", "effect"))
    fs.writeFileSync(path.join(consumer, "package.json"), JSON.stringify({ type: "module" }))
    fs.writeFileSync(path.join(consumer, "tsconfig.json"), JSON.stringify({ compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", target: "ES2023", strict: true, noEmit: true, types: [] } }))
    fs.writeFileSync(path.join(consumer, "main.ts"), `import { Effect } from "effect"
import { BottleLive, plan, type BottlePlan } from "bot-bottle"
import { makeClient } from "bot-bottle/promise"
const program: Effect.Effect<BottlePlan, unknown> = plan({ agent: "task", manifest: ${JSON.stringify(path.join(cwd, "bottle.yaml"))}, name: "consumer" }).pipe(Effect.provide(BottleLive))
export const client = makeClient()
export const run = () => Effect.runPromise(program)
`)
    fs.writeFileSync(path.join(consumer, "main.mjs"), `import { Effect } from "effect"
import { BottleLive, plan } from "bot-bottle"
const p = await Effect.runPromise(plan({ agent: "task", manifest: ${JSON.stringify(path.join(cwd, "bottle.yaml"))}, name: "consumer" }).pipe(Effect.provide(BottleLive)))
console.log(p.slug, p.command.join(" "))
`)
    const tsc = spawnSync(process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", consumer], { encoding: "utf8" })
    expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0)
    const resolved = execFileSync(process.execPath, ["--input-type=module", "-e", "console.log(import.meta.resolve('bot-bottle'))"], { cwd: consumer, encoding: "utf8" })
    expect(resolved).toContain("/dist/lib/index.mjs")
    const ran = spawnSync(process.execPath, ["main.mjs"], { cwd: consumer, env, encoding: "utf8" })
    expect(ran.status, ran.stderr).toBe(0)
    expect(ran.stdout).toBe("consumer sh /workspace/task.sh\n")
  })
})
