/**
 * Runs the dashboard: the Ink app on the terminal (alternate screen, restored on exit), or with
 * `once` the list printed once (`--json`: one JSON array, camelCase keys) for scripts. Loaded
 * on demand by `bottle dash`, so no other command pays for React and Ink.
 */
import { render } from "ink"
import type { Context } from "effect"
import { table } from "../cli/render.ts"
import { approvalQueue } from "./approvals.ts"
import { App } from "./components/App.tsx"
import { ColorContext, colorsWanted } from "./components/theme.tsx"
import { type DashApi, type DashServices, makeDashApi } from "./feed.ts"
import { age, rowJson } from "./model.ts"
import { DashStore } from "./store.ts"

export interface RunOptions {
  readonly once: boolean
  readonly json: boolean
  readonly cwd: string
  readonly env: Record<string, string | undefined>
  /** argv that runs `bottle` (for `bottle resume` in a new tmux window). */
  readonly bottleCommand: ReadonlyArray<string>
  /** Where the programs' error logs go while the screen is up (set here: the store's alerts). */
  readonly logSink: { alert: (text: string) => void }
}

export const runDash = async (context: Context.Context<DashServices>, options: RunOptions): Promise<number> => {
  const api = makeDashApi(context, { cwd: options.cwd, env: options.env, queue: approvalQueue, bottleCommand: options.bottleCommand })
  if (options.once) {
    const store = new DashStore(api, { watch: false })
    await store.start()
    const snap = store.getSnapshot()
    if (options.json) process.stdout.write(`${JSON.stringify(snap.rows.map(rowJson), null, 2)}\n`)
    else if (snap.rows.length === 0) process.stdout.write("no bottles (start one with `bottle dash` → s, or `bottle start <agent>`)\n")
    else {
      process.stdout.write(`${table(
        ["NAME", "LABEL", "STATUS", "BACKEND", "AGE", "EGRESS OK/NO (5 MIN)", "PUSHES", "PENDING"],
        snap.rows.map((r) => [r.slug, r.label, r.status, r.backend, age(r.createdAt, snap.now), `${r.egress.allowed}/${r.egress.denied}`, String(r.pushes), String(r.pending)])
      )}\n`)
    }
    for (const a of snap.alerts) process.stderr.write(`bottle: ${a.text}\n`)
    return snap.alerts.length > 0 ? 1 : 0
  }
  if (process.stdin.isTTY !== true || process.stdout.isTTY !== true) {
    process.stderr.write("bottle: dash needs a terminal (for scripts: `bottle dash --once --json`)\n")
    return 2
  }
  const store = new DashStore(api, { watch: true })
  options.logSink.alert = (text) => store.alert("error", text)
  void store.start()
  await mountDash(store, api, options.env).waitUntilExit()
  store.stop()
  return 0
}

/** The live screen on this process's terminal (bench/dash.ts mounts it the same way). */
export const mountDash = (store: DashStore, api: DashApi, env: Record<string, string | undefined>) =>
  render(
    <ColorContext.Provider value={colorsWanted(env)}>
      <App store={store} api={api} />
    </ColorContext.Provider>,
    { exitOnCtrlC: true, alternateScreen: true, incrementalRendering: true, interactive: true }
  )
