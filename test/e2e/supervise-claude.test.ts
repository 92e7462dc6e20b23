/**
 * Claude Code's own permission prompts through the approval queue, for real: Claude Code (the
 * pinned CLI in the agent image) runs headless with `--permission-prompt-tool
 * mcp__supervise__permission_prompt` (from `supervise: { permission_prompts: true }`) against a
 * stand-in for Anthropic's API (fake-anthropic.mjs: the model's turn is a Bash tool_use). Its
 * "may I run this?" arrives as a `permission` request; `bottle approve` lets the command run;
 * a denied one does not run. This checks the tool's contract against Claude Code itself.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bottleNames } from "../../src/programs/bottleNames.ts"
import { issueServerCert, makeTestCa } from "../egress/support/pki.ts"
import { baseEnv, cli, cliSpawn, docker, ensureBuilt, tempDir, waitFor } from "./support.ts"

const slug = `e2e-svc-${crypto.randomBytes(3).toString("hex")}`
const KEY = `sk-ant-e2e-${crypto.randomBytes(8).toString("hex")}`

const manifest = `
agents:
  e2e:
    bottle: box
bottles:
  box:
    egress:
      routes:
        - host: api.anthropic.com
          auth: { header: x-api-key, token_env: ANTHROPIC_API_KEY, alternates: [authorization] }
          roles: [anthropic_api_key]
          allow_private_ips: true   # the stand-in is a container on a Docker network
    supervise: { permission_prompts: true }
`

let cwd = ""
let stateDir = ""
let env: NodeJS.ProcessEnv = {}
let api = ""

const approvalsJson = () => JSON.parse(cli(["approvals", slug, "--json"], { cwd, env }).stdout || "[]") as Array<{ id: string; kind: string; status: string; title: string; details: string }>

/** Runs Claude Code headless in the agent with the bottle's own command line (its permission-prompt tool included). */
const runClaude = () => {
  const plan = JSON.parse(cli(["plan", "e2e", "--json", "--name", slug], { cwd, env }).stdout) as { command: Array<string> }
  return cliSpawn(["exec", slug, "--", ...plan.command, "-p", "Create the proof file.", "--output-format", "json"], { cwd, env })
}

beforeAll(async () => {
  ensureBuilt()
  cwd = tempDir("bb-e2e-svc-cwd-")
  stateDir = tempDir("bb-e2e-svc-state-")
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
  const ca = await makeTestCa()
  const leaf = await issueServerCert(ca, ["api.anthropic.com"])
  const pki = tempDir("bb-e2e-svc-pki-")
  fs.writeFileSync(path.join(pki, "ca.pem"), ca.certPem)
  fs.writeFileSync(path.join(pki, "cert.pem"), leaf.certPem)
  fs.writeFileSync(path.join(pki, "key.pem"), leaf.keyPem)
  fs.copyFileSync(path.join(import.meta.dirname, "fake-anthropic.mjs"), path.join(pki, "server.mjs"))
  fs.chmodSync(pki, 0o755)
  for (const f of fs.readdirSync(pki)) fs.chmodSync(path.join(pki, f), 0o644)
  env = baseEnv({ BOTTLE_STATE_DIR: stateDir, ANTHROPIC_API_KEY: KEY, BOTTLE_EGRESS_EXTRA_CA_CERTS: path.join(pki, "ca.pem") })
  const started = cli(["start", "e2e", "--yes", "--detach", "--name", slug], { cwd, env })
  expect(started.code, started.stderr).toBe(0)
  api = `bb-e2e-svc-api-${slug}`
  const run = docker(["run", "-d", "--name", api, "--label", "bot-bottle.e2e=1", "--network", bottleNames(stateDir, slug).egressNetwork,
    "--network-alias", "api.anthropic.com", "-v", `${pki}:/srv:ro`, "node:22-bookworm-slim", "node", "/srv/server.mjs"])
  expect(run.code, run.stderr).toBe(0)
  await waitFor(() => docker(["logs", api]).stdout.includes("fake anthropic listening"), 30_000, "the API stand-in")
}, 900_000)

afterAll(() => {
  if (api) docker(["rm", "-f", api])
  if (cwd) cli(["stop", slug, "--purge"], { cwd, env })
})

describe("Claude Code's permission prompts go to the approval queue", () => {
  it("a Bash command Claude Code wants to run waits for `bottle approve`, then runs", async () => {
    const claude = runClaude()
    let request: { id: string; title: string; details: string } | undefined
    try {
      await waitFor(() => (request = approvalsJson().find((a) => a.kind === "permission" && a.status === "pending")) !== undefined, 60_000, `a permission request (claude says: ${claude.output().slice(-500)})`)
      expect(request!.title).toBe("Bash: touch /tmp/permission-proof")
      expect(request!.details).toContain("Claude Code asks to use Bash")
      // Not run yet: it waits for the operator.
      expect(cli(["exec", slug, "--", "sh", "-c", "test -e /tmp/permission-proof && echo RAN || echo WAITING"], { cwd, env }).stdout.trim()).toBe("WAITING")
      const ok = cli(["approve", request!.id, "--note", "fine"], { cwd, env })
      expect(ok.code, ok.stderr).toBe(0)
      await new Promise<void>((resolve) => (claude.exitCode !== null ? resolve() : claude.once("exit", () => resolve())))
      expect(claude.exitCode, claude.output()).toBe(0)
    } finally {
      if (claude.exitCode === null) claude.kill("SIGKILL")
    }
    expect(cli(["exec", slug, "--", "sh", "-c", "test -e /tmp/permission-proof && echo RAN || echo WAITING"], { cwd, env }).stdout.trim()).toBe("RAN")
    // The model's next turn carried the command's result; the real key went on the wire, the agent never had it.
    const seen = docker(["logs", api]).stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { apiKey: string | null; toolResult: string | null })
    expect(seen.some((s) => s.toolResult !== null)).toBe(true)
    expect(seen.every((s) => s.apiKey === null || s.apiKey === KEY)).toBe(true)
  }, 180_000)

  it("a denied one does not run, and Claude Code is told why", async () => {
    cli(["exec", slug, "--", "rm", "-f", "/tmp/permission-proof"], { cwd, env })
    const claude = runClaude()
    let request: { id: string } | undefined
    try {
      await waitFor(() => (request = approvalsJson().find((a) => a.kind === "permission" && a.status === "pending")) !== undefined, 60_000, "a permission request")
      expect(cli(["deny", request!.id, "--note", "not today"], { cwd, env }).code).toBe(0)
      await new Promise<void>((resolve) => (claude.exitCode !== null ? resolve() : claude.once("exit", () => resolve())))
    } finally {
      if (claude.exitCode === null) claude.kill("SIGKILL")
    }
    expect(cli(["exec", slug, "--", "sh", "-c", "test -e /tmp/permission-proof && echo RAN || echo NOT-RUN"], { cwd, env }).stdout.trim()).toBe("NOT-RUN")
    const results = docker(["logs", api]).stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { toolResult: string | null }).filter((s) => s.toolResult !== null)
    expect(results.at(-1)!.toolResult).toContain("not today")
  }, 180_000)
})
