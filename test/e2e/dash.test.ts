/**
 * `bottle dash` as a person uses it, in a real terminal (tmux, 80×24) against the real engine:
 * start a bottle through the modal (the plan, then y), its agent's terminal opening in a new
 * tmux window; a request from inside the agent shows as an egress line in the bottle's detail;
 * the same request, to a host the bottle does not route under `on_unrouted: ask`, is a pending
 * request in the bottle's approval queue, approved with a note from the screen; X stops and
 * purges the bottle and the list shows it gone. Every step is checked on the captured screen.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { defaultSlug } from "../../src/programs/prepare.ts"
import { readAnswer } from "../../src/schema/ApprovalQueue.ts"
import { BIN, ensureBuilt, labelled, tempDir, waitFor } from "./support.ts"

const manifest = `
agents:
  coder:
    bottle: box
    label: Coder
    color: green
    command: [bash, --norc, --noprofile]
bottles:
  box:
    egress:
      on_unrouted: ask
      routes:
        - host: api.example.com
`

let cwd = ""
let stateDir = ""
const session = `bb-dash-${process.pid}`

const tmux = (...args: Array<string>) => spawnSync("tmux", args, { encoding: "utf8" })
const screen = (target: string) => tmux("capture-pane", "-p", "-t", target).stdout
const q = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`
const dash = `${session}:0`
const keys = (target: string, ...k: Array<string>) => tmux("send-keys", "-t", target, ...k)
const see = (target: string, what: string | RegExp, ms = 60_000) =>
  waitFor(() => (typeof what === "string" ? screen(target).includes(what) : what.test(screen(target))), ms, `${String(what)} on the screen:\n${screen(target)}`)

beforeAll(() => {
  ensureBuilt()
  cwd = tempDir("bb-dash-cwd-")
  stateDir = tempDir("bb-dash-state-")
  fs.writeFileSync(path.join(cwd, "bottle.yaml"), manifest)
}, 600_000)

afterAll(() => {
  tmux("kill-session", "-t", session)
  const slug = defaultSlug("coder", cwd)
  if (labelled(slug).length > 0) spawnSync(process.execPath, [BIN, "stop", slug, "--purge"], { env: { ...process.env, BOTTLE_STATE_DIR: stateDir }, encoding: "utf8" })
})

describe("bottle dash in a terminal", () => {
  it("starts a bottle through the modal, shows its egress, answers its approval request, stops it", async () => {
    const slug = defaultSlug("coder", cwd)
    const env = [`PATH=${process.env["PATH"]}`, `HOME=${process.env["HOME"]}`, `BOTTLE_STATE_DIR=${stateDir}`, "TERM=xterm-256color",
      ...(process.env["BOTTLE_EXTRA_CA_CERTS"] ? [`BOTTLE_EXTRA_CA_CERTS=${process.env["BOTTLE_EXTRA_CA_CERTS"]}`] : [])]
    // TMUX is the pane's own (expanded by its shell): the dashboard knows it runs inside tmux.
    const cmd = `cd ${q(cwd)} && env -i ${env.map(q).join(" ")} "TMUX=$TMUX" ${q(process.execPath)} ${q(BIN)} dash; echo DASH-EXIT=$?; sleep 600`
    const r = tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd)
    expect(r.status, r.stderr).toBe(0)

    await see(dash, "no bottles — press s to start one")
    expect(screen(dash)).toContain("s:start")

    // Start: pick the agent, read the plan, confirm.
    keys(dash, "s")
    await see(dash, "pick an agent")
    await see(dash, /> coder\s+\(Coder\)/)
    keys(dash, "Enter")
    await see(dash, `Start ${slug}?`)
    const plan = screen(dash)
    expect(plan).toContain(`Bottle ${slug}`)
    expect(plan).toContain("api.example.com")
    expect(plan).toContain("y: start")
    expect(fs.existsSync(path.join(stateDir, "bottles", slug)), "nothing made before the confirmation").toBe(false)
    keys(dash, "y")
    await see(dash, `Launching ${slug}`)
    await see(dash, `bottle ${slug} is running`, 600_000)
    const launched = screen(dash)
    expect(launched).toContain("✓ starting agent")
    expect(launched).toContain(`opened ${slug} in a new tmux window`)

    // The agent's terminal, in the new window: a request from inside the agent.
    const agent = `${session}:1`
    await see(agent, /bash-[\d.]+\$\s*$/m, 120_000)
    keys(agent, "curl -s -w ' code=%{http_code}\\n' https://blocked.example.com/nope", "Enter")
    await see(agent, /code=403/)
    const id = /approval request ([a-z2-9]{12}) is pending/.exec(screen(agent).replace(/\n/g, ""))?.[1]
    expect(id, `a pending request id in the 403:\n${screen(agent)}`).toBeDefined()

    keys(dash, "Enter")
    await see(dash, /coder-\w+\s+Coder\s+running/)
    keys(dash, "Enter")
    await see(dash, "Egress (newest last)")
    await see(dash, /DENY\s+\S+\s+blocked\.example\.com/)

    // The request is also in the bottle's approval queue (egress asks); approve it with a note.
    await see(dash, "Approvals (1 pending)")
    await see(dash, /pending\s+egress\s+GET blocked\.example\.com:443\/nope/)
    keys(dash, "a")
    await see(dash, "note (optional)")
    keys(dash, "-l", "ship it")
    await see(dash, "note (optional): ship it")
    keys(dash, "Enter")
    await see(dash, `approved ${id} (route: once)`)
    await see(dash, "Approvals (0 pending)")
    await see(dash, /approved\s+egress\s+GET blocked\.example\.com.* — ship it/)
    expect(readAnswer(path.join(stateDir, "bottles", slug, "egress"), id!)).toMatchObject({ status: "approved", note: "ship it", route: "once" })

    // Stop and purge: the bottle leaves the list and the engine.
    keys(dash, "Escape")
    await see(dash, /coder-\w+\s+Coder\s+running/)
    keys(dash, "X")
    await see(dash, `Stop ${slug} and delete its state?`)
    keys(dash, "y")
    await see(dash, "no bottles — press s to start one", 120_000)
    expect(screen(dash)).toContain(`${slug} stopped and purged`)
    expect(labelled(slug)).toEqual([])

    keys(dash, "q")
    await see(dash, "DASH-EXIT=0")
  }, 900_000)
})
