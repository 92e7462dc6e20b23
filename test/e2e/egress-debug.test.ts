/**
 * Egress you can debug, on a real Docker engine and a real bundle: `egress ls` shows the
 * credential route; `logs --egress -f` streams a request made after it started; a failed
 * upstream's audit line says why; deny then allow keeps the route's credential (the upstream
 * sees the real token again), across stop and resume; the sidecar's log is readable after stop,
 * and live it shows the agent's control characters escaped.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bottleNames } from "../../src/programs/bottleNames.ts"
import { issueServerCert, makeTestCa } from "../egress/support/pki.ts"
import { baseEnv, cli, cliSpawn, docker, ensureBuilt, tempDir, waitFor } from "./support.ts"

const API = "api.debug-test.dev"
const CLOSED = "closed.debug-test.dev"
const TOKEN = `e2e-debug-token-${crypto.randomBytes(12).toString("hex")}`
const slug = `e2e-dbg-${crypto.randomBytes(3).toString("hex")}`

const manifest = `
agents:
  e2e:
    bottle: box
bottles:
  box:
    egress:
      routes:
        - host: ${API}
          auth: { header: authorization, scheme: Bearer, token_env: E2E_DEBUG_TOKEN }
          allow_private_ips: true   # the upstream is a container on a Docker network
        - host: ${CLOSED}
          ports: [8443]             # nothing listens there: the connection is refused
          allow_private_ips: true
    workspace: { copy_cwd: true, workdir: /workspace }
`

let cwd = ""
let stateDir = ""
let pki = ""
let env: NodeJS.ProcessEnv = {}
const upstream = `bb-e2e-dbg-upstream-${slug}`

const inAgent = (script: string) => cli(["exec", slug, "sh", "-c", script], { cwd, env })

/** The routed upstream on the bottle's egress network (the bundle's only), as API and CLOSED. */
const runUpstream = async () => {
  docker(["rm", "-f", upstream])
  const run = docker(["run", "-d", "--name", upstream, "--label", "bot-bottle.e2e=1", "--network", bottleNames(stateDir, slug).egressNetwork,
    "--network-alias", API, "--network-alias", CLOSED, "-v", `${pki}:/srv:ro`, "node:22-bookworm-slim", "node", "/srv/server.mjs"])
  expect(run.code, run.stderr).toBe(0)
  await waitFor(() => docker(["logs", upstream]).stdout.includes("upstream listening"), 30_000, "upstream")
}

const authorizationsSeen = (urlPath: string) =>
  docker(["logs", upstream]).stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { url: string; authorization: string | null })
    .filter((s) => s.url === urlPath).map((s) => s.authorization)

interface EgressLs {
  readonly routes: ReadonlyArray<{ host: string; state: string; rule: string | null; source: string; route: { credential: { tokenEnv: string } | null } }>
}
const egressLs = () => {
  const r = cli(["egress", "ls", slug, "--json"], { cwd, env })
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as EgressLs
}

beforeAll(async () => {
  ensureBuilt()
  cwd = tempDir("bb-e2e-dbg-cwd-")
  stateDir = tempDir("bb-e2e-dbg-state-")
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
  const ca = await makeTestCa()
  const leaf = await issueServerCert(ca, [API, CLOSED])
  pki = tempDir("bb-e2e-dbg-pki-")
  fs.writeFileSync(path.join(pki, "ca.pem"), ca.certPem)
  fs.writeFileSync(path.join(pki, "cert.pem"), leaf.certPem)
  fs.writeFileSync(path.join(pki, "key.pem"), leaf.keyPem)
  fs.copyFileSync(path.join(import.meta.dirname, "upstream-server.mjs"), path.join(pki, "server.mjs"))
  fs.chmodSync(pki, 0o755)
  for (const f of fs.readdirSync(pki)) fs.chmodSync(path.join(pki, f), 0o644)
  env = baseEnv({ BOTTLE_STATE_DIR: stateDir, E2E_DEBUG_TOKEN: TOKEN, BOTTLE_EGRESS_EXTRA_CA_CERTS: path.join(pki, "ca.pem") })
  // The token goes to a host that is not a known home of it: approved as a person would (see docker.test.ts).
  fs.writeFileSync(
    path.join(stateDir, "grants.json"),
    JSON.stringify({ grants: [{ token_env: "E2E_DEBUG_TOKEN", host: API, approved_at: new Date().toISOString(), manifest: path.join(cwd, "bottle.yaml") }] }),
    { mode: 0o600 }
  )
  const started = cli(["start", "e2e", "--yes", "--detach", "--json", "--name", slug], { cwd, env })
  expect(started.code, started.stderr).toBe(0)
  expect(JSON.parse(started.stdout)).toEqual({ bottle: slug, status: "running" })
  await runUpstream()
}, 900_000)

afterAll(() => {
  docker(["rm", "-f", upstream])
  if (cwd) cli(["stop", slug, "--purge"], { cwd, env })
})

describe("egress you can debug", () => {
  it("`egress ls` shows the credential route and the rule name the audit uses", () => {
    const ls = egressLs()
    expect(ls.routes.map((r) => [r.host, r.state, r.rule, r.source, r.route.credential?.tokenEnv ?? null])).toEqual([
      [API, "live", `routes[0] (${API})`, "manifest", "E2E_DEBUG_TOKEN"],
      [CLOSED, "live", `routes[1] (${CLOSED})`, "manifest", null]
    ])
    const cleanup = cli(["cleanup", "--dry-run", "--json"], { cwd, env })
    expect(cleanup.code, cleanup.stderr).toBe(0)
    expect(JSON.parse(cleanup.stdout)).toEqual({ dryRun: true, removed: [], revokedKeys: [], failures: [] })
    const human = cli(["egress", "ls", slug], { cwd, env })
    expect(human.stdout).toMatch(new RegExp(`${API.replace(/\./g, "\\.")}\\s+live\\s+authorization: Bearer \\$E2E_DEBUG_TOKEN`))
  })

  it("`logs --egress -f` streams a request made after it started", async () => {
    const follow = cliSpawn(["logs", slug, "--egress", "-f"], { cwd, env })
    try {
      await waitFor(() => follow.output().includes("TIME"), 20_000, "the follower's header")
      const r = inAgent(`curl -sS -m 10 https://${API}/v1/followed`)
      expect(r.stdout, r.stderr).toBe("hello from upstream\n")
      await waitFor(() => follow.output().includes("/v1/followed"), 20_000, "the request to stream")
      expect(follow.exitCode, "still following").toBeNull()
      const line = follow.output().split("\n").find((l) => l.includes("/v1/followed")) ?? ""
      expect(line).toMatch(new RegExp(`allow\\s+GET\\s+${API.replace(/\./g, "\\.")}\\s+/v1/followed\\s+200`))
      expect(follow.output()).not.toContain(TOKEN)
    } finally {
      follow.kill("SIGINT")
    }
  })

  it("a failed upstream's audit line carries its reason", async () => {
    const r = inAgent(`curl -sS -m 10 -o /dev/null -w '%{http_code}' https://${CLOSED}:8443/v1/refused`)
    expect(r.stdout).toBe("502")
    let line: { decision: string; status: number; reason?: string } | undefined
    await waitFor(() => {
      const out = cli(["logs", slug, "--egress", "--json"], { cwd, env }).stdout
      line = out.split("\n").filter((l) => l.includes("/v1/refused")).map((l) => JSON.parse(l) as typeof line).at(-1)
      return line !== undefined
    }, 10_000, "the audit line")
    expect(line).toMatchObject({ decision: "error", status: 502 })
    expect(line?.reason).toMatch(new RegExp(`^connect: ${CLOSED.replace(/\./g, "\\.")} refused the connection \\(ECONNREFUSED\\)`))
    const table = cli(["logs", slug, "--egress"], { cwd, env }).stdout
    expect(table).toMatch(/ECONNREFUSED/)
  })

  it("the agent's text in the live sidecar log cannot drive the terminal: an HTTP/2 :path's C1 controls are escaped", async () => {
    // Inside the tunnel, HTTP/2: the proxy decodes :path as latin1, so byte 0x9b is U+009B (CSI).
    // A credential in the path is a DLP refusal, which the daemon logs with the path.
    const h2 = `const tls = require("tls"), net = require("net"), http2 = require("http2")
const u = new URL(process.env.HTTPS_PROXY)
const s = net.connect(+u.port, u.hostname, () => {
  s.write("CONNECT ${API}:443 HTTP/1.1\\r\\nHost: ${API}:443\\r\\n\\r\\n")
  s.once("data", () => {
    const c = http2.connect("https://${API}", { createConnection: () => tls.connect({ socket: s, servername: "${API}", ALPNProtocols: ["h2"], rejectUnauthorized: false }) })
    const r = c.request({ ":path": "/c1\\u009b2J\\u009d0;PWNED\\u009c/ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789" })
    r.on("response", (h) => { console.log(h[":status"]); c.close() })
  })
})`
    const r = cli(["exec", slug, "node", "-e", h2], { cwd, env })
    expect(r.stdout.trim(), r.stderr).toBe("403")
    let live = ""
    await waitFor(() => {
      const l = cli(["logs", slug], { cwd, env })
      live = l.stdout + l.stderr
      return live.includes("/c1")
    }, 15_000, "the refusal in the daemon log")
    for (const c of ["\u009b", "\u009d", "\u009c"]) expect(live).not.toContain(c)
    expect(live).toContain("/c1\\x9b2J\\x9d0;PWNED\\x9c/")
  })

  it("deny then allow keeps the credential, across stop and resume; the sidecar log is readable after stop", async () => {
    const denied = cli(["egress", "deny", slug, API], { cwd, env })
    expect(denied.code, denied.stderr).toBe(0)
    // Refused at CONNECT (an unrouted host): the proxy's answer to the tunnel is the 403.
    await waitFor(() => inAgent(`curl -sS -m 5 -o /dev/null -w '%{http_connect}' https://${API}/v1/while-denied; true`).stdout === "403", 15_000, "the deny to apply")
    expect(egressLs().routes.find((r) => r.host === API)).toMatchObject({ state: "denied", rule: null, source: "manifest" })

    // Stop (the upstream goes first: it holds the bottle's egress network).
    docker(["rm", "-f", upstream])
    const stopped = cli(["stop", slug, "--json"], { cwd, env })
    expect(stopped.code, stopped.stderr).toBe(0)
    expect(JSON.parse(stopped.stdout)).toEqual({ bottle: slug, stopped: true, purged: false })
    const saved = cli(["logs", slug], { cwd, env })
    expect(saved.code, saved.stderr).toBe(0)
    expect(saved.stderr).toContain("as saved when it stopped")
    expect(saved.stdout).toContain("bottle-bundle: ready (egress)")
    expect(saved.stdout).not.toContain(TOKEN)

    const resumed = cli(["resume", slug, "--detach", "--json"], { cwd, env })
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(JSON.parse(resumed.stdout.trim().split("\n").at(-1)!)).toEqual({ bottle: slug, status: "running", resumed: true })
    await runUpstream()
    expect(egressLs().routes.find((r) => r.host === API)?.state, "the deny survived stop/resume").toBe("denied")

    const allowed = cli(["egress", "allow", slug, API], { cwd, env })
    expect(allowed.code, allowed.stderr).toBe(0)
    expect(allowed.stdout).toContain("injects authorization: Bearer $E2E_DEBUG_TOKEN")
    expect(egressLs().routes.find((r) => r.host === API)).toMatchObject({ state: "live", source: "manifest", route: { credential: { tokenEnv: "E2E_DEBUG_TOKEN" } } })
    await waitFor(() => inAgent(`curl -sS -m 5 -o /dev/null -w '%{http_code}' https://${API}/v1/restored -H 'Authorization: Bearer egress-placeholder'; true`).stdout === "200", 15_000, "the allow to apply")
    expect(authorizationsSeen("/v1/restored").at(-1), "the real token is injected again").toBe(`Bearer ${TOKEN}`)
  })
})
