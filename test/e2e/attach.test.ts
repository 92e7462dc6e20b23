/**
 * `bottle start` attached, as a person uses it: in a real terminal (tmux), the agent's command
 * gets the TTY; its exit code comes back; exiting or Ctrl-C tears everything down but the
 * volumes that keep its workspace and home for `resume` (test/e2e/lifecycle*.test.ts).
 */
import { spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bottleNames } from "../../src/programs/bottleNames.ts"
import { BIN, ensureBuilt, labelled, runningParts, subnetLeaseHolders, tempDir, waitFor } from "./support.ts"

const manifest = `
agents:
  shell:
    bottle: box
    command: [bash, --norc, --noprofile]
    skills: [./skills/review]
  sleeper:
    bottle: box
    command: [sleep, "1000"]
  editor:
    bottle: mounted
    command: [bash, --norc, --noprofile]
bottles:
  mounted:
    workspace: { mount_cwd: true, workdir: /workspace }
  box:
    egress:
      routes:
        - host: api.example.com
    workspace: { copy_cwd: true, workdir: /workspace }
`

let cwd = ""
let stateDir = ""
const sessions: Array<string> = []

const tmux = (...args: Array<string>) => spawnSync("tmux", args, { encoding: "utf8" })
const screen = (s: string) => tmux("capture-pane", "-p", "-t", s).stdout
const q = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`

/** Runs `bottle start <agent> --yes --name <slug>` in a fresh tmux session; the exit code lands in a file. */
const startAttached = (agent: string, slug: string, flags: ReadonlyArray<string> = ["--yes"], opts: { readonly cwd?: string; readonly env?: ReadonlyArray<string> } = {}) => {
  const session = `bb-${slug}`
  sessions.push(session)
  const exitFile = path.join(stateDir, `${slug}.exit`)
  const env = [`PATH=${process.env["PATH"]}`, `HOME=${process.env["HOME"]}`, `BOTTLE_STATE_DIR=${stateDir}`, `TERM=xterm`,
    ...(process.env["BOTTLE_EXTRA_CA_CERTS"] ? [`BOTTLE_EXTRA_CA_CERTS=${process.env["BOTTLE_EXTRA_CA_CERTS"]}`] : []), ...(opts.env ?? [])]
  const cmd = `cd ${q(opts.cwd ?? cwd)} && env -i ${env.map(q).join(" ")} ${q(process.execPath)} ${q(BIN)} start ${agent} ${flags.join(" ")} --name ${slug}; echo EXIT=$? > ${q(exitFile)}; sleep 600`
  const r = tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", cmd)
  expect(r.status, r.stderr).toBe(0)
  return { session, exitFile }
}

beforeAll(() => {
  ensureBuilt()
  cwd = tempDir("bb-attach-cwd-")
  stateDir = tempDir("bb-attach-state-")
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
  fs.mkdirSync(path.join(cwd, "skills", "review"), { recursive: true })
  fs.writeFileSync(path.join(cwd, "skills", "review", "SKILL.md"), "---\nname: review\n---\nReview carefully.\n")
}, 600_000)

afterAll(() => {
  for (const s of sessions) tmux("kill-session", "-t", s)
})

describe("bottle start, attached to a terminal", () => {
  it("shows the plan and asks; answering no starts nothing and leaves nothing", async () => {
    const slug = `ask-${crypto.randomBytes(3).toString("hex")}`
    const { session, exitFile } = startAttached("shell", slug, [])
    await waitFor(() => screen(session).includes("[y/N]"), 60_000, `the confirmation prompt in:\n${screen(session)}`)
    const text = screen(session)
    expect(text).toContain(`Bottle ${slug}`)
    expect(text).toContain("egress     api.example.com")
    tmux("send-keys", "-t", session, "n", "Enter")
    await waitFor(() => fs.existsSync(exitFile), 30_000, "the CLI to exit")
    expect(fs.readFileSync(exitFile, "utf8").trim()).toBe("EXIT=1")
    expect(screen(session)).toContain("bottle: not started")
    expect(fs.existsSync(path.join(stateDir, "bottles", slug)), "no state dir").toBe(false)
    expect(labelled(slug)).toEqual([])
  }, 120_000)

  it("mount_cwd: the agent edits the host's files in place, and their ownership is left alone", async () => {
    const slug = `mnt-${crypto.randomBytes(3).toString("hex")}`
    // The agent's user is uid 1000; the directory must be writable for it (here: world-writable).
    fs.chmodSync(cwd, 0o777)
    fs.writeFileSync(path.join(cwd, "host-file.txt"), "from the host\n")
    fs.mkdirSync(path.join(cwd, ".git", "hooks"), { recursive: true })
    fs.writeFileSync(path.join(cwd, ".git", "config"), "[core]\n")
    const manifestBefore = fs.readFileSync(path.join(cwd, "bottle.yaml"), "utf8")
    const before = fs.statSync(path.join(cwd, "host-file.txt"))
    const { session, exitFile } = startAttached("editor", slug)
    await waitFor(() => /bash-[\d.]+\$\s*$/m.test(screen(session)), 300_000, `a shell prompt in:\n${screen(session)}`)
    // What would run code on the host later is read-only: git config and hooks, the manifest.
    const attempts = [
      "echo '[core] fsmonitor = /tmp/x' >> /workspace/.git/config 2>/dev/null || echo ro-config",
      "echo pwn > /workspace/.git/hooks/post-checkout 2>/dev/null || echo ro-hooks",
      "echo '# pwn' >> /workspace/bottle.yaml 2>/dev/null || echo ro-manifest"
    ]
    tmux("send-keys", "-t", session, `cat /workspace/host-file.txt && echo from-the-agent > /workspace/agent-file.txt; ${attempts.join("; ")}; exit 0`, "Enter")
    await waitFor(() => fs.existsSync(exitFile), 60_000, "the CLI to exit")
    expect(screen(session)).toContain("from the host")
    for (const m of ["ro-config", "ro-hooks", "ro-manifest"]) expect(screen(session)).toContain(m)
    expect(fs.readFileSync(path.join(cwd, ".git", "config"), "utf8")).toBe("[core]\n")
    expect(fs.existsSync(path.join(cwd, ".git", "hooks", "post-checkout"))).toBe(false)
    expect(fs.readFileSync(path.join(cwd, "bottle.yaml"), "utf8")).toBe(manifestBefore)
    expect(fs.readFileSync(path.join(cwd, "agent-file.txt"), "utf8")).toBe("from-the-agent\n")
    const after = fs.statSync(path.join(cwd, "host-file.txt"))
    expect([after.uid, after.gid]).toEqual([before.uid, before.gid])
    expect(runningParts(slug), "nothing runs; the volumes stay for resume").toEqual([])
    // The read-only placeholders laid over missing guarded names are gone with the bottle.
    for (const n of [".envrc", ".vscode", "HEAD"]) expect(fs.existsSync(path.join(cwd, n)), n).toBe(false)
  }, 600_000)

  it("gives the agent's command the terminal, provisions skills and the (empty) prompt file, returns its exit code, and tears down on exit", async () => {
    const slug = `att-${crypto.randomBytes(3).toString("hex")}`
    const { session, exitFile } = startAttached("shell", slug)
    await waitFor(() => /bash-[\d.]+\$\s*$/m.test(screen(session)), 300_000, `a shell prompt in:\n${screen(session)}`)
    tmux("send-keys", "-t", session, "tty; stat -c %a:%s ~/.bottle/prompt.md; cat ~/.claude/skills/review/SKILL.md; exit 7", "Enter")
    await waitFor(() => fs.existsSync(exitFile), 60_000, "the CLI to exit")
    const text = screen(session)
    expect(text).toMatch(/\/dev\/pts\/\d+/)
    // No prompt: the file still exists (empty, 0600), and the command got no prompt flag.
    expect(text).toMatch(/^600:0$/m)
    expect(text).toContain("Review carefully.")
    expect(fs.readFileSync(exitFile, "utf8").trim()).toBe("EXIT=7")
    expect(runningParts(slug), "nothing runs; the volumes stay for resume").toEqual([])
    expect(fs.existsSync(path.join(stateDir, "bottles", slug, "plan.json")), "state kept for logs and resume").toBe(true)
    expect(subnetLeaseHolders(stateDir)).not.toContain(slug)
  }, 600_000)

  it("Ctrl-C in the terminal ends the agent's command and tears everything down", async () => {
    const slug = `int-${crypto.randomBytes(3).toString("hex")}`
    const { session, exitFile } = startAttached("sleeper", slug)
    await waitFor(() => spawnSync("docker", ["top", bottleNames(stateDir, slug).agent], { encoding: "utf8" }).stdout.includes("sleep 1000"), 300_000, "the agent's command to run")
    tmux("send-keys", "-t", session, "C-c")
    await waitFor(() => fs.existsSync(exitFile), 60_000, "the CLI to exit")
    expect(fs.readFileSync(exitFile, "utf8").trim()).toMatch(/^EXIT=(130|2)$/)
    expect(runningParts(slug), "nothing runs; the volumes stay for resume").toEqual([])
  }, 600_000)

  it("a credential grant is shown and asked about with the start; yes approves it (remembered) and starts the bottle", async () => {
    const slug = `grant-${crypto.randomBytes(3).toString("hex")}`
    const dir = tempDir("bb-attach-grant-")
    fs.writeFileSync(path.join(dir, "bottle.yaml"), `agents:
  shell: { bottle: box, command: [bash, --norc, --noprofile] }
bottles:
  box:
    egress:
      routes:
        - host: collect.example.net
          auth: { scheme: Bearer, token_env: CLAUDE_CODE_OAUTH_TOKEN }
`)
    const { session, exitFile } = startAttached("shell", slug, [], { cwd: dir, env: ["CLAUDE_CODE_OAUTH_TOKEN=placeholder-for-the-test"] })
    await waitFor(() => screen(session).includes(`Approve this credential grant and start bottle ${slug}? [y/N]`), 60_000, `the grant prompt in:\n${screen(session)}`)
    expect(screen(session)).toContain("$CLAUDE_CODE_OAUTH_TOKEN → collect.example.net")
    expect(screen(session)).toContain("NEW CREDENTIAL GRANT")
    expect(fs.existsSync(path.join(stateDir, "grants.json")), "nothing approved before the answer").toBe(false)
    tmux("send-keys", "-t", session, "y", "Enter")
    await waitFor(() => /bash-[\d.]+\$\s*$/m.test(screen(session)), 300_000, `a shell prompt in:\n${screen(session)}`)
    const grants = JSON.parse(fs.readFileSync(path.join(stateDir, "grants.json"), "utf8")) as { grants: Array<{ token_env: string; host: string }> }
    expect(grants.grants.map((g) => `${g.token_env} ${g.host}`)).toContain("CLAUDE_CODE_OAUTH_TOKEN collect.example.net")
    expect(fs.statSync(path.join(stateDir, "grants.json")).mode & 0o777).toBe(0o600)
    tmux("send-keys", "-t", session, "exit 3", "Enter")
    await waitFor(() => fs.existsSync(exitFile), 60_000, "the CLI to exit")
    expect(fs.readFileSync(exitFile, "utf8").trim()).toBe("EXIT=3")
    expect(runningParts(slug), "nothing runs; the volumes stay for resume").toEqual([])
  }, 420_000)
})
