/**
 * Supervise end to end in a real bottle (docker backend): the plan shows the MCP provisioning;
 * an MCP client inside the agent reaches the supervise daemon at $MCP_SUPERVISE_URL (and
 * Claude Code lists the server at user scope); a request made there shows up under
 * `bottle approvals --watch` (latency printed), is answered with `bottle approve`, and
 * check_approval says so; nothing in the agent can write the queue; and egress
 * `on_unrouted: ask`: an unrouted host gets a 403 naming a pending id, `approve --route session`
 * makes the retry pass, a denied host stays refused, and after stop/resume the session
 * approval is gone.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bottleNames } from "../../src/programs/bottleNames.ts"
import { issueServerCert, makeTestCa } from "../egress/support/pki.ts"
import { baseEnv, cli, cliSpawn, docker, ensureBuilt, tempDir, waitFor } from "./support.ts"

const ASK_HOST = "ask.upstream-test.dev"
const DENY_HOST = "deny.upstream-test.dev"
const slug = `e2e-sv-${crypto.randomBytes(3).toString("hex")}`

const manifest = `
agents:
  e2e:
    bottle: box
bottles:
  box:
    egress:
      routes: []
      on_unrouted: ask
    supervise: { permission_prompts: true }
    workspace: { copy_cwd: true, workdir: /workspace }
`

/**
 * A minimal MCP client (Streamable HTTP, JSON-RPC over fetch) run by node inside the agent:
 * the agent image has node but not the SDK. `list`, `request <title>`, `check <id>`.
 */
const MCP_CLIENT = `
const url = process.env.MCP_SUPERVISE_URL
if (!url) { console.error("no MCP_SUPERVISE_URL"); process.exit(2) }
let sid, n = 0
async function rpc(method, params, notify) {
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" }
  if (sid) { headers["mcp-session-id"] = sid; headers["mcp-protocol-version"] = "2025-06-18" }
  const body = notify ? { jsonrpc: "2.0", method, params } : { jsonrpc: "2.0", id: ++n, method, params }
  const r = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) })
  sid = r.headers.get("mcp-session-id") ?? sid
  if (notify) return
  const text = await r.text()
  const msg = (r.headers.get("content-type") ?? "").includes("event-stream")
    ? text.split("\\n").filter((l) => l.startsWith("data:")).map((l) => JSON.parse(l.slice(5))).find((m) => m.id === n)
    : JSON.parse(text)
  if (!msg || msg.error) throw new Error("MCP error: " + JSON.stringify(msg && msg.error))
  return msg.result
}
const [op, arg] = process.argv.slice(2)
await rpc("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "in-agent", version: "1" } })
await rpc("notifications/initialized", {}, true)
if (op === "list") console.log((await rpc("tools/list", {})).tools.map((t) => t.name).sort().join(","))
else if (op === "request") console.log(JSON.stringify((await rpc("tools/call", { name: "request_approval", arguments: { title: arg } })).structuredContent))
else if (op === "check") console.log(JSON.stringify((await rpc("tools/call", { name: "check_approval", arguments: { id: arg } })).structuredContent))
`

let cwd = ""
let stateDir = ""
let env: NodeJS.ProcessEnv = {}
let upstream = ""

const inAgent = (script: string, opts: { root?: boolean } = {}) =>
  cli(["exec", slug, ...(opts.root ? ["--root"] : []), "--", "sh", "-c", script], { cwd, env })

const pendingIdIn = (text: string): string | undefined => /approval request ([a-z2-9]{12}) is pending/.exec(text)?.[1]
const curl = (host: string) => inAgent(`curl -sS -m 10 -w '\\n%{http_code}' https://${host}/x 2>&1; true`).stdout

beforeAll(async () => {
  ensureBuilt()
  cwd = tempDir("bb-e2e-sv-cwd-")
  stateDir = tempDir("bb-e2e-sv-state-")
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
  fs.writeFileSync(path.join(cwd, "mcp-client.mjs"), MCP_CLIENT)
  const ca = await makeTestCa()
  const leaf = await issueServerCert(ca, [ASK_HOST, DENY_HOST])
  const pki = tempDir("bb-e2e-sv-pki-")
  fs.writeFileSync(path.join(pki, "ca.pem"), ca.certPem)
  fs.writeFileSync(path.join(pki, "cert.pem"), leaf.certPem)
  fs.writeFileSync(path.join(pki, "key.pem"), leaf.keyPem)
  fs.copyFileSync(path.join(import.meta.dirname, "upstream-server.mjs"), path.join(pki, "server.mjs"))
  fs.chmodSync(pki, 0o755)
  for (const f of fs.readdirSync(pki)) fs.chmodSync(path.join(pki, f), 0o644)
  env = baseEnv({ BOTTLE_STATE_DIR: stateDir, BOTTLE_EGRESS_EXTRA_CA_CERTS: path.join(pki, "ca.pem") })

  const started = cli(["start", "e2e", "--yes", "--detach", "--name", slug], { cwd, env })
  expect(started.code, started.stderr).toBe(0)

  // The hosts the agent will ask for live on the bottle's egress network (the bundle's side).
  upstream = `bb-e2e-sv-upstream-${slug}`
  const run = docker(["run", "-d", "--name", upstream, "--label", "bot-bottle.e2e=1", "--network", bottleNames(stateDir, slug).egressNetwork,
    "--network-alias", ASK_HOST, "--network-alias", DENY_HOST, "-v", `${pki}:/srv:ro`, "node:22-bookworm-slim", "node", "/srv/server.mjs"])
  expect(run.code, run.stderr).toBe(0)
  await waitFor(() => docker(["logs", upstream]).stdout.includes("upstream listening"), 30_000, "upstream")
}, 900_000)

afterAll(() => {
  if (upstream) docker(["rm", "-f", upstream])
  if (cwd) cli(["stop", slug, "--purge"], { cwd, env })
})

describe("supervise in a real bottle", () => {
  it("the plan shows the MCP server, its URL and the permission-prompt tool", () => {
    const r = cli(["plan", "e2e"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/MCP_SUPERVISE_URL=http:\/\/10\.213\.\d+\.2:8765\/mcp/)
    expect(r.stdout).toContain("--permission-prompt-tool mcp__supervise__permission_prompt")
    expect(r.stdout).toContain('MCP server "supervise"')
    expect(r.stdout).toContain("unrouted hosts: ASK")
  })

  it("Claude Code in the agent has the server at user scope, and it is connected (`claude mcp list`)", () => {
    const r = inAgent("cd /workspace && claude mcp list 2>&1")
    expect(r.stdout, r.stderr).toMatch(/supervise: http:\/\/10\.213\.\d+\.2:8765\/mcp \(HTTP\) - . Connected/)
  })

  it("an MCP client in the agent lists the tools, asks; `approvals --watch` shows it; `approve` answers; check_approval says approved", async () => {
    expect(inAgent("cd /workspace && node mcp-client.mjs list").stdout.trim()).toBe("check_approval,permission_prompt,request_approval")
    const watcher = cliSpawn(["approvals", slug, "--watch"], { cwd, env })
    const seenAt = new Map<string, number>()
    watcher.stdout!.on("data", (c: Buffer) => {
      for (const m of c.toString().matchAll(/new tool request ([a-z2-9]{12})/g)) if (!seenAt.has(m[1]!)) seenAt.set(m[1]!, Date.now())
    })
    try {
      await waitFor(() => watcher.output().includes("waiting for new ones") || watcher.output().includes("ID "), 30_000, "the watcher")
      const asked = inAgent("cd /workspace && node mcp-client.mjs request 'deploy to staging'")
      expect(asked.code, asked.stderr).toBe(0)
      const { id, status } = JSON.parse(asked.stdout.trim().split("\n").pop()!) as { id: string; status: string }
      expect(status).toBe("pending")
      await waitFor(() => seenAt.has(id), 10_000, "the watch line")
      const created = Date.parse((JSON.parse(cli(["approvals", slug, "--json"], { cwd, env }).stdout) as Array<{ id: string; createdAt: string }>).find((a) => a.id === id)!.createdAt)
      // A figure, not an assertion: from the request's creation in the bundle to the line on the host.
      console.log(`supervise e2e: approvals --watch showed the request ${seenAt.get(id)! - created} ms after the tool call created it`)
      expect(watcher.output()).toContain("\u0007")

      const ok = cli(["approve", id, "--note", "go ahead"], { cwd, env })
      expect(ok.code, ok.stderr).toBe(0)
      const checked = JSON.parse(inAgent(`cd /workspace && node mcp-client.mjs check ${id}`).stdout.trim()) as { status: string; note: string }
      expect(checked).toMatchObject({ status: "approved", note: "go ahead" })
    } finally {
      watcher.kill("SIGINT")
    }
  })

  it("nothing in the agent can write the queue: it is not mounted there, not even for root", () => {
    const state = path.join(stateDir, "bottles", slug, "supervise")
    expect(fs.readdirSync(path.join(state, "requests")).length).toBeGreaterThan(0)
    for (const root of [false, true]) {
      const r = inAgent(
        "ls -a /run/bottle; test -e /run/bottle/supervise && echo SUPERVISE-PRESENT; " +
          "find / -xdev \\( -path /proc -o -path /sys \\) -prune -o \\( -name answers -o -name requests \\) -print 2>/dev/null | grep -v '^/usr' ; " +
          "mkdir -p /run/bottle/supervise/answers 2>/dev/null && echo MADE; true",
        { root }
      )
      expect(r.stdout).not.toContain("SUPERVISE-PRESENT")
      expect(r.stdout).not.toMatch(/\/(answers|requests)\n/)
    }
    // What the agent can do is ask: there is no tool that answers.
    expect(inAgent("cd /workspace && node mcp-client.mjs list").stdout).not.toMatch(/approve|answer/)
    expect(fs.existsSync(path.join(state, "answers")) ? fs.readdirSync(path.join(state, "answers")).length : 0).toBe(1)
  })

  it("egress on_unrouted: ask: 403 naming a pending id; approve --route session makes the retry pass; deny keeps refusing", async () => {
    const first = curl(ASK_HOST)
    expect(first).toMatch(/\n403$/)
    const id = pendingIdIn(first)
    expect(id, first).toBeDefined()
    expect(pendingIdIn(curl(ASK_HOST))).toBe(id)

    const listed = JSON.parse(cli(["approvals", slug, "--json"], { cwd, env }).stdout) as Array<{ id: string; kind: string; host?: string; path?: string }>
    expect(listed.find((a) => a.id === id)).toMatchObject({ kind: "egress", host: ASK_HOST, path: "/x" })

    const ok = cli(["approve", id!, "--route", "session", "--allow-private-ips"], { cwd, env })
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toContain(`- host: ${ASK_HOST}`)
    await waitFor(() => curl(ASK_HOST).endsWith("\n200"), 15_000, "the approved host to pass")
    expect(curl(ASK_HOST)).toBe("hello from upstream\n\n200")
    // No credential rides on an approval.
    const seen = docker(["logs", upstream]).stdout.split("\n").filter((l) => l.includes(ASK_HOST)).map((l) => JSON.parse(l) as { authorization: string | null })
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.every((x) => x.authorization === null)).toBe(true)

    const asked = curl(DENY_HOST)
    const denyId = pendingIdIn(asked)
    expect(denyId, asked).toBeDefined()
    expect(cli(["deny", denyId!, "--note", "not this one"], { cwd, env }).code).toBe(0)
    const refused = curl(DENY_HOST)
    expect(refused).toMatch(/\n403$/)
    expect(refused).toContain(`denied by the operator (approval request ${denyId})`)
    expect(cli(["approve", denyId!, "--route", "session"], { cwd, env }).stdout).toContain("first answer stands")
    expect(curl(DENY_HOST)).toMatch(/\n403$/)
  })

  it("the agent cannot kill supervise with initializes (each a session with a 200 KB clientInfo), nor ask for a wildcard host", () => {
    const flood = `
const name = "x".repeat(200000)
const body = JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name, version: "1" } } })
const one = () => fetch(process.env.MCP_SUPERVISE_URL, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body }).then((r) => r.text().then(() => r.status), () => "refused")
;(async () => {
  const seen = {}
  for (let i = 0; i < 3000; i += 20) for (const s of await Promise.all(Array.from({ length: 20 }, one))) seen[s] = (seen[s] ?? 0) + 1
  console.log(JSON.stringify(seen))
})()`
    const r = cli(["exec", slug, "--", "node", "-e", flood], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toEqual({ 200: 3000 })
    const asked = inAgent("cd /workspace && node mcp-client.mjs request 'after the flood'")
    expect(asked.code, asked.stderr).toBe(0)
    expect(JSON.parse(asked.stdout.trim().split("\n").pop()!)).toMatchObject({ status: "pending" })
    expect(docker(["logs", bottleNames(stateDir, slug).bundle]).stdout).not.toContain("exited")

    // A CONNECT to *.example.com gets a refusal, and nothing is queued (an approval would route every subdomain).
    const wild = `
const net = require("net"), tls = require("tls")
const [host, port] = process.env.HTTPS_PROXY.replace("http://", "").split(":")
const s = net.connect(+port, host, () => s.write("CONNECT *.wild.upstream-test.dev:443 HTTP/1.1\\r\\nHost: *.wild.upstream-test.dev:443\\r\\n\\r\\n"))
s.once("data", () => {
  const t = tls.connect({ socket: s, servername: "*.wild.upstream-test.dev", rejectUnauthorized: false }, () => t.write("GET / HTTP/1.1\\r\\nHost: *.wild.upstream-test.dev\\r\\nConnection: close\\r\\n\\r\\n"))
  let out = ""
  t.on("data", (d) => (out += d)); t.on("close", () => console.log(out)); t.on("error", () => console.log(out))
})`
    const refused = cli(["exec", slug, "--", "node", "-e", wild], { cwd, env })
    expect(refused.stdout).toMatch(/^HTTP\/1\.1 403/)
    expect(refused.stdout).toContain("wildcards")
    const listed = JSON.parse(cli(["approvals", slug, "--json"], { cwd, env }).stdout) as Array<{ host?: string }>
    expect(listed.filter((a) => a.host?.includes("*"))).toEqual([])
  }, 300_000)

  it("after stop/resume a session approval is gone (the host asks again); the denied one stays denied", () => {
    // The test upstream sits on the bottle's egress network: take it off before the network goes.
    docker(["network", "disconnect", "-f", bottleNames(stateDir, slug).egressNetwork, upstream])
    const stopped = cli(["stop", slug], { cwd, env })
    expect(stopped.code, stopped.stderr).toBe(0)
    const resumed = cli(["resume", slug, "--detach"], { cwd, env })
    expect(resumed.code, resumed.stderr).toBe(0)
    const again = curl(ASK_HOST)
    expect(again).toMatch(/\n403$/)
    expect(pendingIdIn(again), again).toBeDefined()
    expect(curl(DENY_HOST)).toContain("denied by the operator")
  })
})
