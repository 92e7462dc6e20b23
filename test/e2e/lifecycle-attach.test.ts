/**
 * One lifecycle, in a real terminal (tmux): Docker's detach keys (Ctrl-P Ctrl-Q) leave an
 * attached bottle running and say how to come back; `resume` attaches again; leaving a session
 * says what happened; an attached start whose agent exits stops the bottle with its workspace
 * kept, and says so; a half-running bottle is brought back by the `resume --detach` its hints
 * name, its workspace as it was.
 */
import { spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bottleNames } from "../../src/programs/bottleNames.ts"
import { baseEnv, BIN, cli, docker, ensureBuilt, labelled, tempDir, waitFor } from "./support.ts"

const manifest = `
agents:
  shell:
    bottle: box
    command: [bash, --norc, --noprofile]
bottles:
  box:
    workspace: { copy_cwd: true, workdir: /workspace }
`

let cwd = ""
let stateDir = ""
let env: NodeJS.ProcessEnv = {}
const sessions: Array<string> = []
const slugs: Array<string> = []

const tmux = (...args: Array<string>) => spawnSync("tmux", args, { encoding: "utf8" })
const screen = (s: string) => tmux("capture-pane", "-p", "-J", "-t", s).stdout
const q = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`
const prompt = /bash-[\d.]+\$\s*$/m

/** Runs `bottle <args>` in a fresh tmux session; its exit code lands in a file. */
const inTerminal = (name: string, args: ReadonlyArray<string>) => {
  const session = `bbl-${name}-${crypto.randomBytes(2).toString("hex")}`
  sessions.push(session)
  const exitFile = path.join(stateDir, `${session}.exit`)
  const vars = [`PATH=${process.env["PATH"]}`, `HOME=${process.env["HOME"]}`, `BOTTLE_STATE_DIR=${stateDir}`, `TERM=xterm`,
    ...(process.env["BOTTLE_EXTRA_CA_CERTS"] ? [`BOTTLE_EXTRA_CA_CERTS=${process.env["BOTTLE_EXTRA_CA_CERTS"]}`] : [])]
  const cmd = `cd ${q(cwd)} && env -i ${vars.map(q).join(" ")} ${q(process.execPath)} ${q(BIN)} ${args.map(q).join(" ")}; echo EXIT=$? > ${q(exitFile)}; sleep 600`
  const r = tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", cmd)
  expect(r.status, r.stderr).toBe(0)
  return { session, exitFile, exit: () => fs.readFileSync(exitFile, "utf8").trim() }
}

const running = (slug: string) => docker(["ps", "--filter", `label=bot-bottle.slug=${slug}`, "--format", "{{.Names}}"]).stdout.trim().split("\n").filter(Boolean).length

beforeAll(() => {
  ensureBuilt()
  cwd = tempDir("bb-lifeatt-cwd-")
  stateDir = tempDir("bb-lifeatt-state-")
  env = baseEnv({ BOTTLE_STATE_DIR: stateDir })
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
}, 600_000)

afterAll(() => {
  for (const s of sessions) tmux("kill-session", "-t", s)
  for (const slug of slugs) if (labelled(slug).length > 0) cli(["stop", slug, "--purge"], { cwd, env })
})

describe("attached sessions", () => {
  it("Ctrl-P Ctrl-Q detaches and the bottle keeps running; resume attaches again; leaving says what happened; an exiting agent stops the bottle with its workspace kept", async () => {
    const slug = `det-${crypto.randomBytes(3).toString("hex")}`
    slugs.push(slug)
    const start = inTerminal("start", ["start", "shell", "--yes", "--name", slug])
    await waitFor(() => prompt.test(screen(start.session)), 300_000, `a shell prompt in:\n${screen(start.session)}`)
    tmux("send-keys", "-t", start.session, "echo from-session-1 > /workspace/s.txt", "Enter")
    const agent = bottleNames(stateDir, slug).agent
    await waitFor(() => docker(["exec", agent, "cat", "/workspace/s.txt"]).stdout.includes("from-session-1"), 30_000, "the command to run")
    tmux("send-keys", "-t", start.session, "C-p", "C-q")
    await waitFor(() => fs.existsSync(start.exitFile), 60_000, `the CLI to return in:\n${screen(start.session)}`)
    expect(start.exit(), screen(start.session)).toBe("EXIT=0")
    expect(screen(start.session)).toContain(`detached from bottle ${slug}: it keeps running`)
    expect(screen(start.session)).toContain(`bottle resume ${slug}`)
    expect(running(slug), "agent and bundle still run").toBe(2)

    const again = inTerminal("resume", ["resume", slug])
    await waitFor(() => prompt.test(screen(again.session)), 120_000, `a shell prompt in:\n${screen(again.session)}`)
    tmux("send-keys", "-t", again.session, "cat /workspace/s.txt; exit 3", "Enter")
    await waitFor(() => fs.existsSync(again.exitFile), 60_000, `the CLI to return in:\n${screen(again.session)}`)
    expect(again.exit()).toBe("EXIT=3")
    expect(screen(again.session)).toContain("from-session-1")
    expect(screen(again.session)).toContain(`the agent's command exited (exit 3); bottle ${slug} keeps running`)
    expect(running(slug)).toBe(2)

    // An attached start whose agent exits: the bottle stops, its workspace kept, and it says so.
    const r = cli(["stop", slug], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    const back = inTerminal("back", ["resume", slug])
    await waitFor(() => prompt.test(screen(back.session)), 300_000, `a shell prompt in:\n${screen(back.session)}`)
    tmux("send-keys", "-t", back.session, "cat /workspace/s.txt; exit 0", "Enter")
    await waitFor(() => fs.existsSync(back.exitFile), 60_000, `the CLI to return in:\n${screen(back.session)}`)
    expect(back.exit()).toBe("EXIT=0")
    expect(screen(back.session)).toContain("from-session-1")
    expect(screen(back.session)).toContain(`bottle ${slug} stopped, its workspace and home kept: \`bottle resume ${slug}\` brings it back`)
    expect(running(slug)).toBe(0)
  }, 900_000)

  it("a half-running bottle: the hint exec gives (`resume --detach`) brings it back, its workspace as it was", () => {
    const slug = `deg-${crypto.randomBytes(3).toString("hex")}`
    slugs.push(slug)
    let r = cli(["start", "shell", "--yes", "--detach", "--name", slug], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain("the agent's command starts when you attach")
    r = cli(["exec", slug, "--", "sh", "-c", "echo kept > /workspace/k.txt"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(docker(["rm", "-f", bottleNames(stateDir, slug).bundle]).code).toBe(0)
    const ls = JSON.parse(cli(["ls", "--json"], { cwd, env }).stdout) as Array<{ slug: string; status: string }>
    expect(ls.find((b) => b.slug === slug)?.status).toBe("degraded")
    r = cli(["resume", slug, "--detach"], { cwd, env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain("restarting it, its workspace and home kept")
    expect(running(slug)).toBe(2)
    r = cli(["exec", slug, "--", "cat", "/workspace/k.txt"], { cwd, env })
    expect(r.stdout).toBe("kept\n")
  }, 600_000)
})
