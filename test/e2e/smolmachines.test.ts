/**
 * The smolmachines backend end to end, with the fake smolvm (test/support/fake-smolvm: its
 * machines are real containers held to `--allow-cidr` by iptables in their namespace) and
 * everything else real: the Docker engine, the image pipeline (docker save → ephemeral
 * registry → skopeo push → `pack create` pulling from it), the artifact cache, the bundle, the
 * isolation probe. Needs root (the fake's iptables).
 */
import { spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { issueServerCert, makeTestCa } from "../egress/support/pki.ts"
import { bottleNames } from "../../src/programs/bottleNames.ts"
import { baseEnv, cli, cliSpawn, docker, ensureBuilt, labelled, tempDir, waitFor } from "./support.ts"

const FAKE_DIR = path.resolve(import.meta.dirname, "../support/fake-smolvm")
const UPSTREAM_HOST = "api.upstream-test.dev"
const TOKEN = `e2e-smol-token-${crypto.randomBytes(12).toString("hex")}`
const run = crypto.randomBytes(3).toString("hex")
const slug = `smol-${run}`

const manifest = `
agents:
  e2e:
    bottle: box
bottles:
  box:
    backend: smolmachines
    env: { BOTTLE_E2E_MARK: "present-on-every-exec" }
    egress:
      routes:
        - host: ${UPSTREAM_HOST}
          auth: { header: authorization, scheme: Bearer, token_env: E2E_UPSTREAM_TOKEN }
          allow_private_ips: true   # the upstream is a container on the bundle's network
    workspace: { copy_cwd: true, workdir: /workspace }
`

let cwd = ""
let stateDir = ""
let cacheDir = ""
let fakeHome = ""
let env: NodeJS.ProcessEnv = {}
let upstream = ""

const inAgent = (s: string, e: NodeJS.ProcessEnv = env, name = slug) => cli(["exec", name, "--", "sh", "-c", s], { cwd, env: e })
/** The fake's machines: their records (what `smolvm machine ls` lists) and their containers. */
const machines = (home = fakeHome): Array<string> => [
  ...(fs.existsSync(path.join(home, "machines")) ? fs.readdirSync(path.join(home, "machines")).map((f) => `record ${f}`) : []),
  ...docker(["ps", "-a", "--filter", `label=fake-smolvm.home=${home}`, "--format", "container {{.Names}}"]).stdout.split("\n").filter(Boolean)
]
const pipelineLeft = () => [
  ...docker(["ps", "-a", "--filter", "label=bot-bottle.pipeline", "--format", "container {{.Names}}"]).stdout.split("\n"),
  ...docker(["network", "ls", "--filter", "label=bot-bottle.pipeline", "--format", "network {{.Name}}"]).stdout.split("\n")
].filter((l) => l.trim() !== "")
/** Tags of images pulled from an ephemeral registry (the fake's pack untags what it pulled). */
const registryTagsLeft = () => docker(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split("\n").filter((r) => r.startsWith("127.0.0.1:"))
const tarballsLeft = () => fs.readdirSync(process.env["TMPDIR"] ?? "/tmp").filter((f) => f.startsWith("bottle-smol-pipeline-"))
const artifacts = (dir = cacheDir) => {
  const d = path.join(dir, "smolmachine")
  return fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.startsWith("sha256_") && !f.endsWith(".meta.json") && !f.endsWith(".lock")) : []
}
/**
 * Watches the engine's registry creations from now on, through a live `docker events` stream
 * (the engine's event history is a small ring buffer other tests' events can push ours out
 * of). A labelled marker container created (never started) and removed at the start and at the
 * end proves the stream was live before the first event and has delivered everything up to
 * the last one.
 */
const watchRegistries = async () => {
  const child = spawn("docker", ["events", "--filter", "type=container", "--filter", "event=create", "--filter", "label=bot-bottle.pipeline", "--format", "{{.Actor.Attributes.name}}"], { stdio: ["ignore", "pipe", "inherit"] })
  let out = ""
  child.stdout.on("data", (c: Buffer) => (out += c.toString()))
  const mark = async () => {
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      const name = `bb-smol-watch-${crypto.randomBytes(4).toString("hex")}`
      docker(["create", "--name", name, "--label", "bot-bottle.pipeline=watch", "node:22-bookworm-slim", "true"])
      docker(["rm", "-f", name])
      const seen = Date.now() + 5000
      while (Date.now() < seen) {
        if (out.split("\n").includes(name)) return
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    child.kill()
    throw new Error("the docker events stream never delivered the marker")
  }
  await mark()
  return {
    stop: async () => {
      await mark()
      child.kill()
      return out.split("\n").filter((n) => n.startsWith("bottle-reg-") && !n.endsWith("-push"))
    }
  }
}

/** Nothing of bottle `name` is left: no machine, container, network, state, lease. */
const expectNothingLeft = (name: string, home = fakeHome) => {
  expect(labelled(name), `engine objects of ${name}`).toEqual([])
  expect(machines(home).filter((m) => m.includes(name)), `machines of ${name}`).toEqual([])
  expect(fs.existsSync(path.join(stateDir, "bottles", name)), `state of ${name}`).toBe(false)
  expect(pipelineLeft(), "registry, pusher or their network").toEqual([])
  expect(tarballsLeft(), "pipeline tarballs").toEqual([])
  expect(registryTagsLeft(), "images tagged with a gone registry's address").toEqual([])
}

beforeAll(async () => {
  ensureBuilt()
  cwd = tempDir("bb-smol-cwd-")
  stateDir = tempDir("bb-smol-state-")
  cacheDir = tempDir("bb-smol-cache-")
  fakeHome = tempDir("bb-smol-fake-")
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
  fs.writeFileSync(path.join(cwd, "README.md"), "workspace file\n")
  const ca = await makeTestCa()
  const leaf = await issueServerCert(ca, [UPSTREAM_HOST])
  const pki = tempDir("bb-smol-pki-")
  fs.writeFileSync(path.join(pki, "ca.pem"), ca.certPem)
  fs.writeFileSync(path.join(pki, "cert.pem"), leaf.certPem)
  fs.writeFileSync(path.join(pki, "key.pem"), leaf.keyPem)
  fs.copyFileSync(path.join(import.meta.dirname, "upstream-server.mjs"), path.join(pki, "server.mjs"))
  fs.chmodSync(pki, 0o755)
  for (const f of fs.readdirSync(pki)) fs.chmodSync(path.join(pki, f), 0o644)
  env = baseEnv({
    PATH: `${FAKE_DIR}${path.delimiter}${process.env["PATH"] ?? ""}`,
    BOTTLE_STATE_DIR: stateDir,
    BOTTLE_CACHE_DIR: cacheDir,
    FAKE_SMOLVM_HOME: fakeHome,
    E2E_UPSTREAM_TOKEN: TOKEN,
    BOTTLE_EGRESS_EXTRA_CA_CERTS: path.join(pki, "ca.pem")
  })
  fs.writeFileSync(
    path.join(stateDir, "grants.json"),
    JSON.stringify({ grants: [{ token_env: "E2E_UPSTREAM_TOKEN", host: UPSTREAM_HOST, approved_at: new Date().toISOString(), manifest: path.join(cwd, "bottle.yaml") }] }),
    { mode: 0o600 }
  )
  const started = cli(["start", "e2e", "--yes", "--detach", "--name", slug], { cwd, env })
  expect(started.code, started.stderr).toBe(0)
  expect(started.stdout.trim()).toBe(slug)
  expect(started.stderr).not.toContain(TOKEN)
  // The cold pipeline ran: every stage, in order.
  const stages = started.stderr.split("\n").map((l) => l.match(/smolmachines: (docker save|registry up|pushed|packed)/)?.[1]).filter(Boolean)
  expect(stages).toEqual(["docker save", "registry up", "pushed", "packed"])

  // The routed upstream on the bundle's network: the bundle reaches it, the machine must not.
  upstream = `bb-smol-upstream-${run}`
  const up = docker(["run", "-d", "--name", upstream, "--label", "bot-bottle.e2e=1", "--network", `${bottleNames(stateDir, slug).base}-net`, "--network-alias", UPSTREAM_HOST,
    "-v", `${pki}:/srv:ro`, "node:22-bookworm-slim", "node", "/srv/server.mjs"])
  expect(up.code, up.stderr).toBe(0)
  await waitFor(() => docker(["logs", upstream]).stdout.includes("upstream listening"), 30_000, "upstream")
}, 900_000)

afterAll(() => {
  if (upstream) docker(["rm", "-f", upstream])
  for (const s of [slug, `${slug}-b`, `${slug}-p1`, `${slug}-p2`]) cli(["stop", s, "--purge"], { cwd, env })
  // The fake's own image store (what its artifacts name): not in use once the machines are gone.
  const packs = docker(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "fake-smolvm/pack"]).stdout.split("\n").filter(Boolean)
  if (packs.length > 0) docker(["rmi", ...packs])
})

describe("smolmachines: a running bottle", () => {
  it("the pipeline left nothing behind: no registry, pusher, network or tarball; the artifact is cached", () => {
    expect(pipelineLeft()).toEqual([])
    expect(tarballsLeft()).toEqual([])
    expect(artifacts()).toHaveLength(1)
  })

  it("runs Claude Code in the machine: `bottle exec <slug> -- claude --version`", () => {
    const r = cli(["exec", slug, "--", "claude", "--version"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/\d+\.\d+\.\d+ \(Claude Code\)/)
  })

  it("has the bottle's env on every exec (create-time env reaches PID 1 only), as the agent's user", () => {
    for (let i = 0; i < 2; i++) {
      const r = inAgent("echo $BOTTLE_E2E_MARK $HTTPS_PROXY $HOME; id -un")
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout.trim().split("\n")).toEqual([expect.stringMatching(/^present-on-every-exec http:\/\/10\.\d+\.\d+\.2:3128 \/home\/node$/), "node"])
    }
  })

  it("undid pack's ownership remap: /home/node owned by node, /tmp and /var/tmp 1777; the workspace copied in", () => {
    const r = inAgent("stat -c '%U %a %n' /home/node /tmp /var/tmp; cat /workspace/README.md")
    expect(r.stdout.trim().split("\n")).toEqual(["node 755 /home/node", "root 1777 /tmp", "root 1777 /var/tmp", "workspace file"])
  })

  it("reaches the routed host through egress, with the real token injected on the wire (and holds it nowhere)", () => {
    const r = inAgent(`curl -sS -m 10 https://${UPSTREAM_HOST}/smol-check`)
    expect(r.code, r.stderr).toBe(0)
    const seen = docker(["logs", upstream]).stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { url: string; authorization: string | null })
    expect(seen.find((s) => s.url === "/smol-check")?.authorization).toBe(`Bearer ${TOKEN}`)
    expect(inAgent(`grep -rl ${TOKEN} /proc/*/environ /home /workspace /tmp 2>/dev/null; echo end`).stdout.trim()).toBe("end")
  })

  it("cannot reach the upstream directly, the bundle network's gateway, or the host (the allowlist holds)", () => {
    const ip = docker(["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", upstream]).stdout.trim()
    const gw = inAgent("ip route | awk '/default/ {print $3}'").stdout.trim()
    expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
    expect(gw).toMatch(/^\d+\.\d+\.\d+\.\d+$/)
    for (const target of [`${ip}:443`, `${gw}:22`, "172.17.0.1:22"]) {
      const [host, port] = target.split(":")
      const r = inAgent(`node -e "const s=require('net').connect({host:'${host}',port:${port}});s.on('connect',()=>{console.log('REACHED');process.exit(0)});s.on('error',e=>{console.log(e.code==='ECONNREFUSED'?'REACHED':'blocked '+e.code);process.exit(0)});setTimeout(()=>{console.log('blocked TIMEOUT');process.exit(0)},1500)"`)
      expect(r.stdout.trim(), `${target} from inside`).toMatch(/^blocked/)
    }
  })

  it("`bottle doctor <bottle>` reruns the isolation probe and passes", () => {
    const r = cli(["doctor", slug, "--json"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as { ok: boolean; results: Array<{ label: string; ok: boolean }> }
    expect(report.ok).toBe(true)
    expect(report.results.map((x) => x.label)).toContain("the cloud metadata service")
  })

  it("lists the bottle as running on smolmachines", () => {
    const r = cli(["ls"], { cwd, env })
    expect(r.stdout).toMatch(new RegExp(`^${slug}\\s+e2e\\s+smolmachines\\s+running`, "m"))
  })
})

describe("smolmachines: the artifact cache", () => {
  it("a second start of the unchanged image is a cache hit: no registry container is created", async () => {
    const watch = await watchRegistries()
    const r = cli(["start", "e2e", "--yes", "--detach", "--name", `${slug}-b`], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/smolmachines: cached artifact /)
    expect(r.stderr).not.toMatch(/smolmachines: (docker save|registry up|pushed|packed)/)
    expect(await watch.stop()).toEqual([])
    expect(cli(["stop", `${slug}-b`, "--purge"], { cwd, env }).code).toBe(0)
  })

  it("a corrupt cached artifact is rebuilt, not booted", async () => {
    const [name] = artifacts()
    fs.appendFileSync(path.join(cacheDir, "smolmachine", name!), "tampered\n")
    const watch = await watchRegistries()
    const r = cli(["start", "e2e", "--yes", "--detach", "--name", `${slug}-b`], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/smolmachines: packed/)
    expect(await watch.stop()).toHaveLength(1)
    expect(fs.readFileSync(path.join(cacheDir, "smolmachine", name!), "utf8")).not.toContain("tampered")
    expect(cli(["stop", `${slug}-b`, "--purge"], { cwd, env }).code).toBe(0)
  })

  it("two parallel starts of a new image run one pipeline", async () => {
    const c = cli(["cleanup", "--cache"], { cwd, env })
    expect(c.code, c.stderr).toBe(0)
    expect(c.stdout).toMatch(/removed cached artifact /)
    expect(artifacts()).toEqual([])
    const watch = await watchRegistries()
    const starts = [`${slug}-p1`, `${slug}-p2`].map((n) => cliSpawn(["start", "e2e", "--yes", "--detach", "--name", n], { cwd, env }))
    try {
      const codes = await Promise.all(starts.map((p) => new Promise<number | null>((resolve) => p.on("exit", resolve))))
      const outputs = starts.map((s) => s.output()).join("\n")
      expect(codes, outputs).toEqual([0, 0])
      expect(await watch.stop(), outputs).toHaveLength(1)
      expect(starts.filter((s) => /smolmachines: packed/.test(s.output())), outputs).toHaveLength(1)
      expect(starts.filter((s) => /built by a parallel start/.test(s.output())), outputs).toHaveLength(1)
    } finally {
      for (const n of [`${slug}-p1`, `${slug}-p2`]) cli(["stop", n, "--purge"], { cwd, env })
    }
  }, 600_000)
})

describe("smolmachines: the known upstream bugs fail closed", () => {
  for (const [bug, what] of [["drop-allow-cidr", "--allow-cidr silently dropped beside --from (before 1.8)"], ["open-cached-net", "a cache-served machine with open networking (before 1.9.0)"]] as const) {
    it(`${what}: start fails naming what was reachable and the smolvm to install, leaving nothing`, () => {
      const name = `${slug}-bug`
      const r = cli(["start", "e2e", "--yes", "--detach", "--name", name], { cwd, env: { ...env, FAKE_SMOLVM_BUG: bug } })
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(/launch failed at probe: isolation probe failed, so the bottle was torn down: .* is reachable/)
      expect(r.stderr).toContain("install smolvm 1.9.0 or later")
      expectNothingLeft(name)
    })
  }

  it("a too-old smolvm: refused before anything, naming the version to install", () => {
    const name = `${slug}-old`
    const r = cli(["start", "e2e", "--yes", "--detach", "--name", name], { cwd, env: { ...env, FAKE_SMOLVM_VERSION: "1.8.3" } })
    expect(r.code).not.toBe(0)
    expect(r.stderr.trim()).toBe("bottle: smolvm 1.8.3 is too old: --backend smolmachines needs 1.9.0 or later (network allowlists were unreliable before); install smolvm 1.9.0 or later")
    expectNothingLeft(name)
  })
})

describe("smolmachines: Ctrl-C after each acquisition leaves nothing behind", () => {
  // A fresh cache for the pipeline's stages (a miss), the warm one for the machine and probe.
  for (const [marker, cold] of [["smolmachines: registry up", true], ["smolmachines: pushed", true], ["smolmachines: packed", true], ["• starting agent", false], ["• probing the sandbox's isolation", false]] as const) {
    it(`SIGINT after "${marker}"`, async () => {
      const name = `${slug}-int`
      const e = cold ? { ...env, BOTTLE_CACHE_DIR: tempDir("bb-smol-cache-int-") } : env
      const child = cliSpawn(["start", "e2e", "--yes", "--detach", "--name", name], { cwd, env: e })
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
      await waitFor(() => child.output().includes(marker) || child.exitCode !== null, 300_000, marker)
      child.kill("SIGINT")
      const code = await exited
      expect(code, child.output()).not.toBe(0)
      expectNothingLeft(name)
    }, 400_000)
  }
})

describe("smolmachines: stop keeps the agent's work, resume brings it back, purge removes it", () => {
  const machine = () => bottleNames(stateDir, slug).agent
  const container = () => `fake-smolvm-${machine()}`

  it("`bottle stop` leaves the machine stopped (its disks are the work) and no container, network, registry or tarball; the artifact stays cached", () => {
    // The agent's work: a file and a commit in the workspace, a file in its home.
    const work = inAgent("cd /workspace && echo agent readme > README.md && echo work > agent-work.txt && git init -q && git add -A && git -c user.name=a -c user.email=a@a commit -qm from-agent && echo home > /home/node/.agent-home && git rev-parse HEAD")
    expect(work.code, work.stderr).toBe(0)
    // The test's upstream sits on the bundle's network: it goes first, as it is not the bottle's.
    docker(["rm", "-f", upstream])
    const r = cli(["stop", slug], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(labelled(slug), "the bundle's container and network").toEqual([])
    expect(machines().filter((m) => m.includes(machine()))).toEqual([`record ${machine()}.json`, `container ${container()}`])
    expect(docker(["inspect", "--format", "{{.State.Status}}", container()]).stdout.trim()).toBe("exited")
    const ls = JSON.parse(cli(["ls", "--json"], { cwd, env }).stdout) as Array<{ slug: string; status: string; volumes: Array<string> }>
    expect(ls.find((b) => b.slug === slug)).toMatchObject({ status: "stopped", volumes: [`machine ${machine()}`] })
    expect(pipelineLeft()).toEqual([])
    expect(tarballsLeft()).toEqual([])
    expect(artifacts()).toHaveLength(1)
  })

  it("`bottle resume --detach` starts the same machine at the same address: the workspace, the commit and the home are as the agent left them; the probe passes", () => {
    // As if the first launch had been killed before its workspace copy was recorded: the resume
    // seeds the kept machine again, replacing nothing in it.
    const seeded = path.join(stateDir, "bottles", slug, "smolmachines-seeded.json")
    expect(fs.existsSync(seeded)).toBe(true)
    fs.rmSync(seeded)
    const r = cli(["resume", slug, "--detach"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/resumed with its workspace and home/)
    const back = inAgent("cat /workspace/agent-work.txt /home/node/.agent-home /workspace/README.md; git -C /workspace log --format=%s; echo $BOTTLE_E2E_MARK; id -un")
    expect(back.code, back.stderr).toBe(0)
    expect(back.stdout.trim().split("\n")).toEqual(["work", "home", "agent readme", "from-agent", "present-on-every-exec", "node"])
    expect(fs.existsSync(seeded), "the seeding is recorded again").toBe(true)
    const doctor = cli(["doctor", slug, "--json"], { cwd, env })
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0)
    expect((JSON.parse(doctor.stdout) as { ok: boolean }).ok).toBe(true)
  })

  it("`bottle stop --purge` leaves no machine, container, network, state or lease", () => {
    const r = cli(["stop", slug, "--purge"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expectNothingLeft(slug)
    expect(fs.readdirSync(path.join(stateDir, "leases"), { recursive: true }).map(String).filter((f) => f.includes(slug))).toEqual([])
    expect(artifacts()).toHaveLength(1)
  })
})
