/**
 * The bundle protocol's table drives the init and the bundle's mounts: a row added is a daemon
 * the init starts (and without the row it is refused by name); each daemon gets its own
 * variables only; the bundle mounts one subdir per daemon the plan runs, never the bottle's
 * whole state dir nor a sibling daemon's subdir (a bottle without git-gate never has its keys).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { startInit, type RunningInit } from "../bundle/init.ts"
import {
  BUNDLE_STATE_ROOT,
  bundleRunSpec,
  COMMON_ENV,
  DAEMON_TABLE,
  DAEMONS,
  type DaemonRow,
  envForDaemon,
  hostDirOf,
  notBuiltDaemons,
  READY_LINE,
  UNHEALTHY_LINE
} from "../src/schema/BundleProtocol.ts"

const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

/** A daemon that says ready on its pipe, records the environment it got, and runs until SIGTERM. */
const FAKE_DAEMON = `import * as fs from "node:fs"
import * as path from "node:path"
fs.writeFileSync(path.join(process.env.BOTTLE_FAKE_DIR, "env.json"), JSON.stringify(process.env))
if (process.env.FAKE_CRASH) process.exit(3)
fs.writeSync(Number(process.env.BOTTLE_READY_FD), "ready\\n")
setInterval(() => {}, 1 << 30)
process.on("SIGTERM", () => process.exit(0))
`
const fakeRow: DaemonRow = {
  name: "fake",
  port: 4321,
  stateSubdir: "fake",
  envPrefix: "BOTTLE_FAKE_",
  env: ({ dir, port }) => ({ BOTTLE_FAKE_DIR: dir, BOTTLE_FAKE_LISTEN: `0.0.0.0:${port}` }),
  readiness: "ready-fd",
  build: { source: "test/fake-daemon.ts", entry: "fake-daemon" }
}

const running: Array<RunningInit> = []
afterEach(async () => {
  for (const r of running.splice(0)) {
    r.stop("SIGTERM")
    await r.done
  }
})

/** The init, in this process, with `table`, running the daemons of `env`. */
const init = (table: ReadonlyArray<DaemonRow>, env: Record<string, string>) => {
  const dir = tmp("bb-proto-")
  fs.writeFileSync(path.join(dir, "fake-daemon.mjs"), FAKE_DAEMON)
  const lines: Array<string> = []
  const statusFile = path.join(dir, "status")
  const r = startInit({
    table,
    entryOf: (row) => path.join(dir, `${row.build?.entry}.mjs`),
    env: { PATH: process.env["PATH"] ?? "", BOTTLE_STATUS_FILE: statusFile, BOTTLE_FAKE_DIR: dir, ...env },
    out: (l) => void lines.push(l)
  })
  running.push(r)
  const waitFor = async (re: RegExp) => {
    for (let i = 0; i < 500 && !lines.some((l) => re.test(l)); i++) await new Promise((res) => setTimeout(res, 20))
    expect(lines.join("\n")).toMatch(re)
  }
  return { dir, lines, statusFile, waitFor, stop: r }
}

describe("bundle protocol: the table drives the init", () => {
  it("a row added is a daemon the init starts, reports ready, and stops", async () => {
    const b = init([...DAEMON_TABLE, fakeRow], { BOTTLE_DAEMONS: "fake" })
    await b.waitFor(new RegExp(`^${READY_LINE} \\(fake\\)$`))
    expect(fs.readFileSync(b.statusFile, "utf8")).toBe("ready\n")
    running.splice(running.indexOf(b.stop), 1)
    b.stop.stop("SIGTERM")
    expect(await b.stop.done).toBe(0)
  })

  it("without its row the same daemon is refused by name, and nothing starts", async () => {
    const b = init(DAEMON_TABLE, { BOTTLE_DAEMONS: "fake" })
    await b.waitFor(new RegExp(`^${UNHEALTHY_LINE}: no daemon named fake`))
    expect(fs.readFileSync(b.statusFile, "utf8")).toMatch(/^unhealthy: no daemon named fake/)
    expect(fs.existsSync(path.join(b.dir, "env.json")), "the daemon never ran").toBe(false)
  })

  it("a row without a build (a planned daemon) is refused clearly, and then none starts", async () => {
    const { build: _, ...planned } = { ...fakeRow, name: "planned", stateSubdir: "planned", envPrefix: "BOTTLE_PLANNED_" }
    const table = [...DAEMON_TABLE, fakeRow, planned]
    const b = init(table, { BOTTLE_DAEMONS: "fake,planned" })
    await b.waitFor(new RegExp(`^${UNHEALTHY_LINE}: daemon planned is not built \\(have: .*fake\\)`))
    expect(fs.existsSync(path.join(b.dir, "env.json")), "no partial bundle").toBe(false)
    expect(notBuiltDaemons(["egress", "git-gate", "planned"], table)).toEqual(["planned"])
  })

  it("a daemon that exits turns the bundle unhealthy, naming it", async () => {
    const b = init([...DAEMON_TABLE, fakeRow], { BOTTLE_DAEMONS: "fake", FAKE_CRASH: "1" })
    await b.waitFor(new RegExp(`^${UNHEALTHY_LINE}: daemon fake exited \\(code 3\\); not restarting`))
    expect(fs.readFileSync(b.statusFile, "utf8")).toMatch(/^unhealthy: daemon fake exited/)
  })

  it("a daemon is not told the other daemons' directories or addresses", async () => {
    const b = init([...DAEMON_TABLE, fakeRow], {
      BOTTLE_DAEMONS: "fake",
      BOTTLE_SLUG: "demo",
      BOTTLE_EGRESS_DIR: "/run/bottle/egress",
      BOTTLE_EGRESS_LISTEN: "0.0.0.0:3128",
      BOTTLE_GIT_GATE_DIR: "/run/bottle/git-gate"
    })
    await b.waitFor(new RegExp(`^${READY_LINE}`))
    const got = JSON.parse(fs.readFileSync(path.join(b.dir, "env.json"), "utf8")) as Record<string, string>
    expect(got["BOTTLE_FAKE_DIR"]).toBe(b.dir)
    expect(got["BOTTLE_SLUG"]).toBe("demo")
    expect(Object.keys(got).filter((k) => k.startsWith("BOTTLE_EGRESS_") || k.startsWith("BOTTLE_GIT_GATE_"))).toEqual([])
  })
})

describe("bundle protocol: the bundle's env and mounts", () => {
  const bottleDir = path.join("/state", "bottles", "demo")
  const inside = (file: string, dir: string) => {
    const rel = path.relative(dir, file)
    return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel))
  }

  it("one mount per daemon of the plan: its own subdir at /run/bottle/<subdir>", () => {
    const spec = bundleRunSpec({ slug: "demo", daemons: ["egress", "git-gate", "supervise"] }, bottleDir)
    expect(spec.mounts).toEqual(DAEMON_TABLE.map((r) => ({ source: path.join(bottleDir, r.stateSubdir), target: `${BUNDLE_STATE_ROOT}/${r.stateSubdir}`, readonly: false })))
  })

  it("no mount shows the bundle the bottle's other state or a sibling daemon's subdir", () => {
    const spec = bundleRunSpec({ slug: "demo", daemons: ["egress", "git-gate", "supervise"] }, bottleDir)
    // What lives beside the daemons' subdirs: the plan, the deploy-key record, the agent's files.
    const elsewhere = ["plan.json", "meta.json", "agent/prompt.md"].map((f) => path.join(bottleDir, f))
    for (const m of spec.mounts) {
      const own = DAEMON_TABLE.find((r) => hostDirOf(bottleDir, r) === m.source)
      expect(own, `${m.source} is a daemon's own subdir`).toBeDefined()
      for (const f of elsewhere) expect(inside(f, m.source), `${f} visible through ${m.source}`).toBe(false)
      for (const r of DAEMON_TABLE.filter((r) => r !== own)) {
        expect(inside(path.join(hostDirOf(bottleDir, r), "keys", "x"), m.source), `${r.name}'s files visible through ${m.source}`).toBe(false)
      }
    }
    const targets = spec.mounts.map((m) => m.target)
    for (const t of targets) for (const u of targets) if (t !== u) expect(inside(u, t), `${u} nested in ${t}`).toBe(false)
  })

  it("a bottle without git-gate never has git-gate's keys in its bundle", () => {
    const spec = bundleRunSpec({ slug: "demo", daemons: ["egress"] }, bottleDir)
    const key = path.join(hostDirOf(bottleDir, DAEMONS["git-gate"]), "keys", "origin")
    expect(spec.mounts.filter((m) => inside(key, m.source))).toEqual([])
    expect(spec.env["BOTTLE_GIT_GATE_DIR"]).toBeUndefined()
  })

  it("the env tells each daemon its own dir and port; the extra CA only when its file is there", () => {
    const plain = bundleRunSpec({ slug: "demo", daemons: ["egress"] }, bottleDir)
    expect(plain.env).toEqual({ BOTTLE_SLUG: "demo", BOTTLE_DAEMONS: "egress", BOTTLE_EGRESS_DIR: "/run/bottle/egress", BOTTLE_EGRESS_LISTEN: "0.0.0.0:3128" })
    const withCa = bundleRunSpec({ slug: "demo", daemons: ["egress"] }, bottleDir, (sub, file) => sub === "egress" && file === "extra-ca.pem")
    expect(withCa.env["BOTTLE_EGRESS_EXTRA_CA"]).toBe("/run/bottle/egress/extra-ca.pem")
  })

  it("a row added is mounted and configured like the others", () => {
    const spec = bundleRunSpec({ slug: "demo", daemons: ["egress", "fake" as "egress"] }, bottleDir, undefined, [...DAEMON_TABLE, fakeRow])
    expect(spec.mounts.map((m) => m.target)).toEqual(["/run/bottle/egress", "/run/bottle/fake"])
    expect(spec.env["BOTTLE_FAKE_DIR"]).toBe("/run/bottle/fake")
    expect(spec.env["BOTTLE_DAEMONS"]).toBe("egress,fake")
  })

  it("every row's variables carry its own prefix (so the init can keep them from the others)", () => {
    for (const row of DAEMON_TABLE) {
      const keys = Object.keys(row.env({ dir: "/d", port: 1, has: () => true }))
      expect(keys.length).toBeGreaterThan(0)
      for (const k of keys) expect(k.startsWith(row.envPrefix), `${row.name}: ${k}`).toBe(true)
      for (const other of DAEMON_TABLE.filter((r) => r !== row)) expect(other.envPrefix.startsWith(row.envPrefix), `${other.envPrefix} under ${row.envPrefix}`).toBe(false)
      for (const c of COMMON_ENV) expect(c.startsWith(row.envPrefix)).toBe(false)
    }
    const env = envForDaemon({ BOTTLE_SLUG: "s", BOTTLE_EGRESS_DIR: "/e", BOTTLE_GIT_GATE_DIR: "/g", PATH: "/bin" }, DAEMONS.egress)
    expect(env).toEqual({ BOTTLE_SLUG: "s", BOTTLE_EGRESS_DIR: "/e", PATH: "/bin" })
  })
})
