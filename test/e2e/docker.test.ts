/**
 * The docker backend end to end, on a real Docker engine: `bottle start` → exec → isolation
 * attacks from inside the agent → token injection on the wire → `bottle stop` leaves nothing.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { issueServerCert, makeTestCa } from "../egress/support/pki.ts"
import { bottleNames, stateRootId } from "../../src/programs/bottleNames.ts"
import { baseEnv, cli, cliSpawn, docker, ensureBuilt, hostService, labelled, runningParts, subnetLeaseHolders, tempDir, waitFor } from "./support.ts"

const UPSTREAM_HOST = "api.upstream-test.dev"
const OTHER_HOST = "other.upstream-test.dev"
const TOKEN = `e2e-real-token-${crypto.randomBytes(12).toString("hex")}`
const slug = `e2e-${crypto.randomBytes(3).toString("hex")}`

const manifest = `
agents:
  e2e:
    bottle: box
    prompt: ./PROMPT.md
bottles:
  box:
    egress:
      routes:
        - host: ${UPSTREAM_HOST}
          auth: { header: authorization, scheme: Bearer, token_env: E2E_UPSTREAM_TOKEN }
          allow_private_ips: true   # the upstream is a container on a Docker network
    workspace: { copy_cwd: true, workdir: /workspace }
`

let cwd = ""
let stateDir = ""
let env: NodeJS.ProcessEnv = {}
let upstream = ""
let hostServer: { readonly port: number; readonly close: () => void } | undefined
let hostPort = 0

/** Runs a shell snippet in the agent as its user (or root), through `bottle exec`. */
const inAgent = (script: string, opts: { root?: boolean; input?: string } = {}) =>
  cli(["exec", slug, ...(opts.root ? ["--root"] : []), "--", "sh", "-c", script], { cwd, env, ...(opts.input !== undefined ? { input: opts.input } : {}) })

beforeAll(async () => {
  ensureBuilt()
  cwd = tempDir("bb-e2e-cwd-")
  stateDir = tempDir("bb-e2e-state-")
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
  fs.writeFileSync(path.join(cwd, "README.md"), "workspace file\n")
  fs.writeFileSync(path.join(cwd, "PROMPT.md"), "---\ntitle: e2e\n---\nBe careful with the database.\n")
  const ca = await makeTestCa()
  const leaf = await issueServerCert(ca, [UPSTREAM_HOST, OTHER_HOST])
  const pki = tempDir("bb-e2e-pki-")
  fs.writeFileSync(path.join(pki, "ca.pem"), ca.certPem)
  fs.writeFileSync(path.join(pki, "cert.pem"), leaf.certPem)
  fs.writeFileSync(path.join(pki, "key.pem"), leaf.keyPem)
  fs.copyFileSync(path.join(import.meta.dirname, "upstream-server.mjs"), path.join(pki, "server.mjs"))
  fs.chmodSync(pki, 0o755)
  for (const f of fs.readdirSync(pki)) fs.chmodSync(path.join(pki, f), 0o644)
  env = baseEnv({ BOTTLE_STATE_DIR: stateDir, E2E_UPSTREAM_TOKEN: TOKEN, BOTTLE_EGRESS_EXTRA_CA_CERTS: path.join(pki, "ca.pem") })

  // The route sends $E2E_UPSTREAM_TOKEN to a host that is not a known home of it: --yes alone
  // does not start it. A person approves such a grant once, in a terminal (attach.test.ts
  // drives that prompt); here the approval is recorded as that prompt records it.
  const refused = cli(["start", "e2e", "--yes", "--detach", "--name", slug], { cwd, env })
  expect(refused.code).not.toBe(0)
  expect(refused.stderr).toContain(`credential grant not approved: $E2E_UPSTREAM_TOKEN → ${UPSTREAM_HOST}`)
  fs.writeFileSync(
    path.join(stateDir, "grants.json"),
    JSON.stringify({ grants: [{ token_env: "E2E_UPSTREAM_TOKEN", host: UPSTREAM_HOST, approved_at: new Date().toISOString(), manifest: path.join(cwd, "bottle.yaml") }] }),
    { mode: 0o600 }
  )
  const started = cli(["start", "e2e", "--yes", "--detach", "--name", slug], { cwd, env })
  expect(started.stderr).not.toContain(TOKEN)
  expect(started.code, started.stderr).toBe(0)
  expect(started.stdout.trim()).toBe(slug)

  // The routed upstream lives on the bottle's egress network, reachable by the bundle only.
  upstream = `bb-e2e-upstream-${slug}`
  const run = docker(["run", "-d", "--name", upstream, "--label", "bot-bottle.e2e=1", "--network", bottleNames(stateDir, slug).egressNetwork, "--network-alias", UPSTREAM_HOST, "--network-alias", OTHER_HOST,
    "-v", `${pki}:/srv:ro`, "node:22-bookworm-slim", "node", "/srv/server.mjs"])
  expect(run.code, run.stderr).toBe(0)
  await waitFor(() => docker(["logs", upstream]).stdout.includes("upstream listening"), 30_000, "upstream")

  // A host service the agent must not reach, on every host address (in its own process, so it
  // answers while a probe runs; see hostService).
  hostServer = await hostService("host-secret\n", "0.0.0.0")
  hostPort = hostServer.port
}, 900_000)

afterAll(() => {
  hostServer?.close()
  if (upstream) docker(["rm", "-f", upstream])
  if (cwd) cli(["stop", slug, "--purge"], { cwd, env })
})

describe("docker backend: a running bottle", () => {
  it("runs Claude Code in the agent: `bottle exec <slug> -- claude --version`", () => {
    const r = cli(["exec", slug, "--", "claude", "--version"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/\d+\.\d+\.\d+ \(Claude Code\)/)
  })

  it("lists the bottle as running", () => {
    const r = cli(["ls", "--json"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    const rows = JSON.parse(r.stdout) as Array<{ slug: string; status: string }>
    expect(rows.find((x) => x.slug === slug)?.status).toBe("running")
  })

  it("provisions the prompt (front matter stripped, 0600) and passes it to Claude Code", () => {
    expect(inAgent("cat ~/.bottle/prompt.md; stat -c %a ~/.bottle/prompt.md").stdout).toBe("Be careful with the database.\n600\n")
    const plan = JSON.parse(fs.readFileSync(path.join(stateDir, "bottles", slug, "plan.json"), "utf8")) as { command: Array<string> }
    expect(plan.command).toEqual(["claude", "--append-system-prompt-file", "/home/node/.bottle/prompt.md"])
  })

  it("copied the workspace in, owned by the agent's user", () => {
    const r = inAgent("cat /workspace/README.md && stat -c %U /workspace/README.md && id -un")
    expect(r.stdout).toBe("workspace file\nnode\nnode\n")
  })

  it("cannot connect to a public IP directly (no route out)", () => {
    // 203.0.113.10 is TEST-NET-3: a public-range address that is never anyone's host.
    const r = inAgent("curl --noproxy '*' -sS -m 4 http://203.0.113.10/ ; echo rc=$?")
    expect(r.stdout).toMatch(/rc=(7|28)/)
    const viaNode = inAgent(`node -e "require('net').connect({host:'203.0.113.10',port:443}).on('error',e=>{console.log('blocked',e.code);process.exit(0)}).on('connect',()=>{console.log('CONNECTED');process.exit(1)}); setTimeout(()=>{console.log('blocked TIMEOUT');process.exit(0)},4000)"`)
    expect(viaNode.stdout).toMatch(/^blocked/)
  })

  it("gets nothing usable from public DNS (while names on its own network resolve)", () => {
    // Positive control: the engine's resolver answers for the bottle's own network.
    expect(inAgent(`getent hosts ${bottleNames(stateDir, slug).bundle}`).stdout).toMatch(/^10\.213\.\d+\.2\s/)
    const r = inAgent("timeout 8 getent hosts example.com; echo rc=$?")
    expect(r.stdout).not.toMatch(/\d+\.\d+\.\d+\.\d+\s+example\.com/)
    expect(r.stdout).toMatch(/rc=[1-9]/)
  })

  it("cannot reach the host: gateway, bridge and host addresses, or host 127.0.0.1 services", () => {
    const hostIps = os.networkInterfaces()
    const addrs = new Set<string>(["127.0.0.1", "172.17.0.1", "10.213.0.1"])
    for (const list of Object.values(hostIps)) for (const a of list ?? []) if (a.family === "IPv4") addrs.add(a.address)
    const gw = inAgent("ip route | awk '/default/ {print $3}'").stdout.trim()
    if (gw) addrs.add(gw)
    const net4 = inAgent("ip -4 -o addr show | awk '{print $4}'").stdout
    for (const cidr of net4.split("\n").filter((l) => l && !l.startsWith("127."))) addrs.add(cidr.replace(/\.\d+\/\d+$/, ".1"))
    for (const ip of addrs) {
      const r = inAgent(`curl --noproxy '*' -sS -m 3 http://${ip}:${hostPort}/ ; echo rc=$?`)
      expect(r.stdout, `host service reachable at ${ip}`).not.toContain("host-secret")
      expect(r.stdout).toMatch(/rc=[1-9]/)
    }
  })

  it("cannot reach another bottle: its sidecar or its agent", async () => {
    const other = `${slug}-b`
    const started = cli(["start", "e2e", "--yes", "--detach", "--name", other], { cwd, env })
    expect(started.code, started.stderr).toBe(0)
    try {
      const plan = JSON.parse(fs.readFileSync(path.join(stateDir, "bottles", other, "plan.json"), "utf8")) as { network: { bundleIp: string } }
      const mine = JSON.parse(fs.readFileSync(path.join(stateDir, "bottles", slug, "plan.json"), "utf8")) as { network: { bundleIp: string } }
      expect(plan.network.bundleIp).not.toBe(mine.network.bundleIp)
      const otherAgent = bottleNames(stateDir, other).agent
      const otherAgentIp = docker(["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", otherAgent]).stdout.trim()
      expect(otherAgentIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
      // A listener in the other agent, which answers there (positive control)...
      docker(["exec", "-d", otherAgent, "node", "-e", "require('http').createServer((q, s) => s.end('other-agent')).listen(8080)"])
      await waitFor(() => docker(["exec", otherAgent, "curl", "-sS", "--noproxy", "*", `http://${otherAgentIp}:8080/`]).stdout === "other-agent", 10_000, "the listener")
      // ...but not from this bottle; nor does the other sidecar, which is listening.
      for (const target of [`${plan.network.bundleIp}:3128`, `${otherAgentIp}:8080`]) {
        const r = inAgent(`curl --noproxy '*' -sS -m 3 http://${target}/ ; echo rc=$?`)
        expect(r.stdout, `reached ${target}`).not.toContain("other-agent")
        expect(r.stdout, `reached ${target}`).toMatch(/rc=(7|28)/)
      }
      // Nor through its own sidecar: IPs are never routed.
      const viaProxy = inAgent(`curl -sS -m 5 -o /dev/null -w '%{http_code}' http://${plan.network.bundleIp}:3128/`)
      expect(viaProxy.stdout).toBe("403")
    } finally {
      cli(["stop", other, "--purge"], { cwd, env })
    }
    expect(labelled(other)).toEqual([])
  })

  it("has no IPv6 at all (link-local addresses could reach host services on ::)", async () => {
    expect(inAgent("cat /proc/sys/net/ipv6/conf/all/disable_ipv6").stdout.trim()).toBe("1")
    expect(inAgent("ip -6 addr show | grep -c inet6; true").stdout.trim()).toBe("0")
    // In its own process (see hostService); the positive control is in the probes block below.
    const v6 = await hostService("host-v6-secret\n", "::")
    const port = v6.port
    try {
      const targets = Object.entries(os.networkInterfaces()).flatMap(([name, list]) =>
        (list ?? []).filter((a) => a.family === "IPv6").map((a) => (a.address.startsWith("fe80") ? `${a.address}%eth0` : a.address)).map((a) => [name, a] as const))
      for (const [, addr] of targets) {
        const r = inAgent(`node -e "const s=require('net').connect({host:'${addr}',port:${port}});s.on('connect',()=>{console.log('REACHED');process.exit(1)});s.on('error',e=>{console.log('blocked',e.code);process.exit(0)});setTimeout(()=>{console.log('blocked TIMEOUT');process.exit(0)},3000)"`)
        expect(r.stdout, `reached the host at ${addr}`).toMatch(/^blocked/)
      }
    } finally {
      v6.close()
    }
  })

  it("cannot reach the metadata service, directly or through the proxy", () => {
    const direct = inAgent("curl --noproxy '*' -sS -m 3 http://169.254.169.254/latest/meta-data/ ; echo rc=$?")
    expect(direct.stdout).toMatch(/rc=[1-9]/)
    const proxied = inAgent("curl -sS -m 5 -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/")
    expect(proxied.stdout).toBe("403")
  })

  it("has no docker socket", () => {
    const r = inAgent("ls -la /var/run/docker.sock /run/docker.sock 2>&1; find / -xdev -name docker.sock 2>/dev/null | head -1; echo done", { root: true })
    expect(r.stdout).toMatch(/No such file/)
    expect(r.stdout.trim().endsWith("done")).toBe(true)
    expect(r.stdout).not.toMatch(/\/docker\.sock\n/)
  })

  it("cannot fork the host to death: the engine holds it to its process limit", () => {
    // cgroup v2 (one hierarchy) or v1 (the pids controller's own).
    const r = inAgent("cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max")
    expect(r.stdout.trim()).toBe("4096")
  })

  it("reaches a routed host through HTTPS_PROXY, with the real token injected on the wire", () => {
    const r = inAgent(`curl -sS -m 10 https://${UPSTREAM_HOST}/v1/hello -H 'Authorization: Bearer egress-placeholder'`)
    expect(r.stdout, r.stderr).toBe("hello from upstream\n")
    const seen = docker(["logs", upstream]).stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { url: string; authorization: string | null })
    const hit = seen.find((s) => s.url === "/v1/hello")
    expect(hit?.authorization).toBe(`Bearer ${TOKEN}`)
  })

  it("shows the sidecar's log and the egress audit log (`bottle logs`)", () => {
    const daemons = cli(["logs", slug], { cwd, env })
    expect(daemons.stdout + daemons.stderr).toContain("bottle-bundle: ready (egress)")
    const audit = cli(["logs", slug, "--egress"], { cwd, env })
    expect(audit.code, audit.stderr).toBe(0)
    const entries = audit.stdout.trim().split("\n").map((l) => JSON.parse(l) as { host: string; path: string; decision: string; status: number })
    expect(entries.some((e) => e.host === UPSTREAM_HOST && e.path === "/v1/hello" && e.decision === "allow" && e.status === 200)).toBe(true)
    expect(audit.stdout).not.toContain(TOKEN)
  })

  it("changes routes of the running bottle live (`bottle egress allow|deny`)", async () => {
    const probe = () => inAgent(`curl -sS -m 5 -o /dev/null -w '%{http_code}' https://${OTHER_HOST}/x 2>/dev/null; true`).stdout
    expect(probe()).not.toBe("200")
    // Routed, but the name resolves to a container's private address: refused at connect time
    // (in the real bundle), until the route allows private addresses.
    expect(cli(["egress", "allow", slug, OTHER_HOST], { cwd, env }).code).toBe(0)
    await waitFor(() => probe() === "502", 15_000, "allowed host to resolve to a refused private address")
    const refusal = inAgent(`curl -sS -m 5 https://${OTHER_HOST}/x`).stdout
    expect(refusal).toMatch(/resolves to \d+\.\d+\.\d+\.\d+, in private .*allow_private_ips: true/)
    expect(cli(["egress", "allow", "--allow-private-ips", slug, OTHER_HOST], { cwd, env }).code).toBe(0)
    await waitFor(() => probe() === "200", 15_000, "allowed host to pass")
    expect(cli(["egress", "deny", slug, OTHER_HOST], { cwd, env }).code).toBe(0)
    await waitFor(() => probe() !== "200", 15_000, "denied host to be refused")
    // The new route carries no credential: the upstream saw none.
    const seen = docker(["logs", upstream]).stdout.split("\n").filter((l) => l.includes(OTHER_HOST)).map((l) => JSON.parse(l) as { authorization: string | null })
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.every((x) => x.authorization === null)).toBe(true)
  })

  it("refuses an unrouted host with a 403 that says why", () => {
    const plain = inAgent("curl -sS -m 5 -w '\\n%{http_code}' http://unrouted.example.net/")
    expect(plain.stdout).toMatch(/403$/)
    expect(plain.stdout).toMatch(/not routed/)
    const tls = inAgent("curl -sS -m 5 https://unrouted.example.net/ 2>&1; echo rc=$?")
    expect(tls.stdout).toMatch(/403/)
  })

  it("holds the real token nowhere: env, /proc/*/environ, or any file", () => {
    expect(inAgent("env").stdout).not.toContain(TOKEN)
    // The token reaches grep on stdin only, so the scan itself does not plant it anywhere.
    const environ = inAgent("for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done 2>/dev/null | grep -cF -f /dev/stdin; true", { root: true, input: TOKEN })
    expect(environ.stdout.trim()).toBe("0")
    const scan = "grep -rlsF -f /dev/stdin --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev / ; echo scanned"
    const files = inAgent(scan, { root: true, input: TOKEN })
    expect(files.stdout.trim()).toBe("scanned")
    // Positive control: the same scan does find a planted string, so an empty result means something.
    const canary = `canary-${crypto.randomBytes(8).toString("hex")}`
    inAgent(`echo ${canary} > /home/node/.cache-canary`)
    expect(inAgent(scan, { root: true, input: canary }).stdout).toContain("/home/node/.cache-canary")
    // ...while the upstream did receive it (the same token, on the wire).
    expect(docker(["logs", upstream]).stdout).toContain(TOKEN)
  })

  it("keeps the bundle's CA key out of the agent: it has the certificate only", () => {
    const r = inAgent("ls /run/bottle/agent; grep -rlsF 'PRIVATE KEY' /run/bottle /usr/local/share/ca-certificates /home/node; echo end", { root: true })
    expect(r.stdout).toContain("ca.pem")
    expect(r.stdout).not.toContain("ca-key")
    expect(r.stdout.trim().split("\n").pop()).toBe("end")
  })
  it("starts the sidecar's daemons from V8's compile cache, whatever uid the bundle runs as", () => {
    // The cache is keyed by V8 flags and uid; a miss costs ~70 ms on every start, silently.
    const image = docker(["inspect", "--format", "{{.Config.Image}}", bottleNames(stateDir, slug).bundle]).stdout.trim()
    const r = docker([
      "run", "--rm", "--user", "4242:4242", "--label", "bot-bottle.e2e=1",
      "--env", "BOTTLE_DAEMONS=egress", "--env", "BOTTLE_EGRESS_DIR=/tmp/w", "--env", "BOTTLE_EGRESS_LISTEN=127.0.0.1:3128",
      "--env", "BOTTLE_STATUS_FILE=/tmp/status", "--env", "NODE_DEBUG_NATIVE=COMPILE_CACHE",
      "--entrypoint", "sh", image, "-c",
      "mkdir /tmp/w && printf 'routes: []\\n' > /tmp/w/routes.yaml && timeout -s TERM 5 node /opt/bot-bottle/dist/bundle-init.mjs"
    ])
    const out = r.stdout + r.stderr
    expect(out).toContain("bottle-bundle: ready (egress)")
    const verdicts = out.split("\n").filter((l) => /cache for file:\/\/\/opt\/bot-bottle\/dist\/\S+ (was|is)/.test(l))
    expect(verdicts.some((l) => l.includes("egress-daemon.mjs was accepted")), out).toBe(true)
    expect(verdicts.filter((l) => !l.includes("was accepted")), out).toEqual([])
  })
})

describe("docker backend: isolation probes, each with a positive control", () => {
  // Stand-in targets on the project's own networks (no traffic leaves the engine): a listener
  // at a public-range address (TEST-NET-3, with an IPv6 address beside it) and one at a
  // link-local address (a stand-in for the cloud metadata service: 169.254.169.254 itself is
  // not used, since a network on its range would shadow a cloud host's own metadata route).
  // Each probe runs twice, the same command: from a throwaway container outside the bottle on
  // the target's network (the positive control: it must succeed) and from the agent (it must
  // fail). A pass then means refused, not unreachable from everywhere.
  const PUBLIC = { net: `bb-e2e-probe-pub-${slug}`, subnet: "203.0.113.0/24", v6subnet: "fd00:bb7e::/64", ip: "203.0.113.10", ip6: "fd00:bb7e::10", gw: "203.0.113.1", gw6: "fd00:bb7e::1" }
  const LINK_LOCAL = { net: `bb-e2e-probe-ll-${slug}`, subnet: "169.254.77.0/24", ip: "169.254.77.10" }
  const listener = `bb-e2e-probe-target-${slug}`
  const PROBE_LABEL = "bot-bottle.e2e-probe=1"
  let agentImage = ""
  let v6Server: { readonly port: number; readonly close: () => void } | undefined
  let v6Port = 0

  /** Runs `script` in a throwaway container of the agent's image (same curl, same node), outside the bottle. */
  const outside = (network: string, script: string) =>
    docker(["run", "--rm", "--label", "bot-bottle.e2e=1", "--label", PROBE_LABEL, "--network", network, "--entrypoint", "sh", agentImage, "-c", script])
  const curlProbe = (host: string, port: number, urlPath = "/") =>
    `curl --noproxy '*' -gsS -m 4 http://${host.includes(":") ? `[${host}]` : host}:${port}${urlPath} ; echo rc=$?`
  const connectProbe = (host: string, port: number) =>
    `node -e "const s=require('net').connect({host:'${host}',port:${port}});s.on('connect',()=>{console.log('CONNECTED');process.exit(0)});s.on('error',e=>{console.log('blocked',e.code);process.exit(0)});setTimeout(()=>{console.log('blocked TIMEOUT');process.exit(0)},4000)"`
  /** Both sides of one probe: reached from outside, refused from the agent. */
  const expectRefusedOnlyInBottle = (network: string, script: string, reached: RegExp, what: string) => {
    const control = outside(network, script)
    expect(control.stdout, `positive control for ${what}: ${control.stderr}`).toMatch(reached)
    const fromAgent = inAgent(script)
    expect(fromAgent.stdout, `the agent reached ${what}`).not.toMatch(reached)
    return fromAgent.stdout
  }

  beforeAll(async () => {
    agentImage = docker(["inspect", "--format", "{{.Config.Image}}", bottleNames(stateDir, slug).agent]).stdout.trim()
    expect(agentImage).not.toBe("")
    // Leftovers of an earlier, killed run would hold the subnets.
    for (const c of docker(["ps", "-aq", "--filter", `label=${PROBE_LABEL}`]).stdout.split("\n").filter(Boolean)) docker(["rm", "-f", c])
    for (const n of docker(["network", "ls", "-q", "--filter", `label=${PROBE_LABEL}`]).stdout.split("\n").filter(Boolean)) docker(["network", "rm", n])
    const pub = docker(["network", "create", "--label", "bot-bottle.e2e=1", "--label", PROBE_LABEL, "--subnet", PUBLIC.subnet, "--gateway", PUBLIC.gw, "--ipv6", "--subnet", PUBLIC.v6subnet, "--gateway", PUBLIC.gw6, PUBLIC.net])
    expect(pub.code, pub.stderr).toBe(0)
    const ll = docker(["network", "create", "--label", "bot-bottle.e2e=1", "--label", PROBE_LABEL, "--subnet", LINK_LOCAL.subnet, LINK_LOCAL.net])
    expect(ll.code, ll.stderr).toBe(0)
    const run = docker(["run", "-d", "--name", listener, "--label", "bot-bottle.e2e=1", "--label", PROBE_LABEL, "--network", PUBLIC.net, "--ip", PUBLIC.ip, "--ip6", PUBLIC.ip6,
      "node:22-bookworm-slim", "node", "-e", "for (const p of [80, 443]) require('http').createServer((q, s) => s.end('probe-target\\n')).listen(p, '::'); console.log('probe target listening')"])
    expect(run.code, run.stderr).toBe(0)
    const connect = docker(["network", "connect", "--ip", LINK_LOCAL.ip, LINK_LOCAL.net, listener])
    expect(connect.code, connect.stderr).toBe(0)
    await waitFor(() => docker(["logs", listener]).stdout.includes("probe target listening"), 30_000, "the probe target")
    v6Server = await hostService("host-v6-secret\n", "::")
    v6Port = v6Server.port
  }, 300_000)

  afterAll(() => {
    v6Server?.close()
    docker(["rm", "-f", listener])
    docker(["network", "rm", PUBLIC.net, LINK_LOCAL.net])
  })

  it("a public address: reached from outside the bottle, refused from the agent (curl and a raw connect)", () => {
    const curl = expectRefusedOnlyInBottle(PUBLIC.net, curlProbe(PUBLIC.ip, 80), /probe-target/, `http://${PUBLIC.ip}/`)
    expect(curl).toMatch(/rc=(7|28)/)
    const raw = expectRefusedOnlyInBottle(PUBLIC.net, connectProbe(PUBLIC.ip, 443), /^CONNECTED/, `${PUBLIC.ip}:443`)
    expect(raw).toMatch(/^blocked/)
    // Through the agent's proxy an address is never routed.
    expect(inAgent(`curl -sS -m 5 -o /dev/null -w '%{http_code}' http://${PUBLIC.ip}/`).stdout).toBe("403")
  })

  it("a host service: reached from a container outside the bottle at the host's bridge address, refused from the agent", () => {
    const r = expectRefusedOnlyInBottle(PUBLIC.net, curlProbe(PUBLIC.gw, hostPort), /host-secret/, `the host service at ${PUBLIC.gw}:${hostPort}`)
    expect(r).toMatch(/rc=[1-9]/)
  })

  it("a link-local address (metadata stand-in): reached from outside the bottle, refused from the agent, directly or through the proxy", () => {
    const direct = expectRefusedOnlyInBottle(LINK_LOCAL.net, curlProbe(LINK_LOCAL.ip, 80, "/latest/meta-data/"), /probe-target/, `http://${LINK_LOCAL.ip}/`)
    expect(direct).toMatch(/rc=[1-9]/)
    expect(inAgent(`curl -sS -m 5 -o /dev/null -w '%{http_code}' http://${LINK_LOCAL.ip}/latest/meta-data/`).stdout).toBe("403")
  })

  it("IPv6: a container and the host's own IPv6 address reached from outside the bottle, refused from the agent", () => {
    expectRefusedOnlyInBottle(PUBLIC.net, connectProbe(PUBLIC.ip6, 80), /^CONNECTED/, `[${PUBLIC.ip6}]:80`)
    expectRefusedOnlyInBottle(PUBLIC.net, curlProbe(PUBLIC.gw6, v6Port), /host-v6-secret/, `the host's [${PUBLIC.gw6}]:${v6Port}`)
    // Every IPv6 address the host has (never an empty list: the probe network gave it one).
    const targets = Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).filter((a) => a.family === "IPv6" && !a.internal).map((a) => a.address))
    expect(targets).toContain(PUBLIC.gw6)
    for (const addr of targets) {
      const r = inAgent(connectProbe(addr.startsWith("fe80") ? `${addr}%eth0` : addr, v6Port))
      expect(r.stdout, `reached the host at ${addr}`).toMatch(/^blocked/)
    }
  })
})

describe("docker backend: stop", () => {
  it("`bottle stop` leaves no container or network carrying the label; only the volumes kept for resume", () => {
    docker(["rm", "-f", upstream])
    const r = cli(["stop", slug], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(runningParts(slug)).toEqual([])
    expect(labelled(slug).every((l) => l.startsWith("volume "))).toBe(true)
    expect(subnetLeaseHolders(stateDir)).toEqual([])
    // The state stays: the audit log can still be read, and the plan shows as stopped.
    const audit = cli(["logs", slug, "--egress"], { cwd, env })
    expect(audit.code, audit.stderr).toBe(0)
    expect(audit.stdout).toContain(UPSTREAM_HOST)
    const daemons = cli(["logs", slug], { cwd, env })
    expect(daemons.code).not.toBe(0)
    expect(daemons.stderr).toContain("--egress")
    const rows = JSON.parse(cli(["ls", "--json"], { cwd, env }).stdout) as Array<{ slug: string; status: string }>
    expect(rows.find((x) => x.slug === slug)?.status).toBe("stopped")
  })
})

describe("docker backend: resume, a crashed sidecar, cleanup", () => {
  it("`bottle resume --detach` brings a stopped bottle back from its state", () => {
    const r = cli(["resume", slug, "--detach"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    const v = cli(["exec", slug, "--", "claude", "--version"], { cwd, env })
    expect(v.stdout).toMatch(/Claude Code/)
  })

  it("a crashed egress daemon is not restarted: the bottle turns unhealthy and the agent is cut off", async () => {
    const bundle = bottleNames(stateDir, slug).bundle
    const kill = docker(["exec", bundle, "sh", "-c", "for p in /proc/[0-9]*; do if tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q 'egress-daemon[.]mjs'; then kill ${p#/proc/}; fi; done"])
    expect(kill.code, kill.stderr).toBe(0)
    await waitFor(() => docker(["logs", bundle]).stdout.includes("bottle-bundle: unhealthy: daemon egress exited"), 10_000, "crash report")
    await waitFor(() => {
      const rows = JSON.parse(cli(["ls", "--json"], { cwd, env }).stdout) as Array<{ slug: string; status: string }>
      return rows.find((x) => x.slug === slug)?.status === "unhealthy"
    }, 20_000, "`bottle ls` to say unhealthy")
    const r = inAgent(`curl -sS -m 5 https://${UPSTREAM_HOST}/v1/hello; echo rc=$?`)
    expect(r.stdout).not.toContain("hello from upstream")
    docker(["rm", "-f", upstream])
    expect(cli(["stop", slug], { cwd, env }).code).toBe(0)
    expect(runningParts(slug)).toEqual([])
  })

  it("`bottle cleanup` removes what is labelled as ours but belongs to no bottle", () => {
    const ghost = `ghost-${crypto.randomBytes(3).toString("hex")}`
    expect(docker(["network", "create", "--label", `bot-bottle.slug=${ghost}`, "--label", `bot-bottle.root=${stateRootId(stateDir)}`, `bottle-${ghost}-int`]).code).toBe(0)
    const dry = cli(["cleanup", "--dry-run"], { cwd, env })
    expect(dry.stdout).toContain(`would remove network bottle-${ghost}-int`)
    expect(labelled(ghost).length).toBe(1)
    const r = cli(["cleanup"], { cwd, env })
    expect(r.stdout).toContain(`removed network bottle-${ghost}-int`)
    expect(labelled(ghost)).toEqual([])
    // A stopped bottle with state is not "gone": cleanup leaves it be.
    expect(fs.existsSync(path.join(stateDir, "bottles", slug))).toBe(true)
  })
})

describe("docker backend: SIGINT during launch leaves nothing behind", () => {
  // Each progress line is printed as its step begins, i.e. right after the previous acquisition.
  const points = [
    { after: "state dir and lease", line: "creating networks" },
    { after: "both networks", line: "starting sidecar bundle" },
    { after: "bundle container", line: "waiting for the sidecar bundle to be ready" },
    { after: "agent container", line: "provisioning agent" }
  ]
  for (const p of points) {
    it(`interrupted after the ${p.after}`, async () => {
      const s = `int-${crypto.randomBytes(3).toString("hex")}`
      const child = cliSpawn(["start", "e2e", "--yes", "--detach", "--name", s], { cwd, env })
      const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)))
      await waitFor(() => child.output().includes(p.line), 120_000, p.line)
      child.kill("SIGINT")
      const code = await exited
      expect(code, child.output()).not.toBe(0)
      expect(labelled(s)).toEqual([])
      expect(fs.existsSync(path.join(stateDir, "bottles", s)), "state dir removed").toBe(false)
      expect(subnetLeaseHolders(stateDir)).not.toContain(s)
    })
  }
})
