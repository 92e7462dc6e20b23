/**
 * Launch progress on stderr: the `Progress` reference rendered for a person, one line per step
 * (LaunchStep, a closed set: every step has its label), and build output folded into a single
 * rewritten status line on a terminal (never dumped over the prompt).
 */
import type { LaunchStep, ProgressEvent } from "../schema/LaunchProgress.ts"
import { Effect } from "effect"

/** Each launch step as a person reads it (the dashboard's modal shows the same words). */
export const LABELS: { readonly [S in LaunchStep]: string } = {
  state: "writing bottle state",
  lease: "leasing the bottle's addresses",
  ca: "minting the bottle CA",
  "deploy-keys": "creating deploy keys",
  network: "creating networks",
  images: "checking images",
  bundle: "starting sidecar bundle",
  "bundle:ready": "waiting for the sidecar bundle to be ready",
  sandbox: "starting agent",
  provision: "provisioning agent",
  probe: "probing the sandbox's isolation",
  attach: "attaching to the agent"
}

/** A renderer for `Progress` (provide it with `Effect.provideService(Progress, ui)`), and `done` to clear its status line. */
export const progress = () => {
  const tty = process.stderr.isTTY === true
  // BOTTLE_TIMINGS=1 stamps each step with the milliseconds since launch began, and since the
  // process started (for tuning).
  const timings = process.env["BOTTLE_TIMINGS"] === "1"
  const t0 = Date.now()
  let pending = false
  const clear = () => {
    if (tty && pending) process.stderr.write("\r\x1b[2K")
    pending = false
  }
  const render = (event: ProgressEvent) => {
    switch (event._tag) {
      case "Step":
        clear()
        process.stderr.write(`• ${LABELS[event.step]}${timings ? ` (+${Date.now() - t0} ms; ${Math.round(performance.now())} ms since start)` : ""}\n`)
        return
      case "BuildOutput": {
        const line = event.line
        // Not a terminal (CI, logs): only the build's step headers, one per line.
        if (!tty) {
          if (/^(Step \d+\/\d+ :|smolmachines: )/.test(line)) process.stderr.write(`  ${line.slice(0, 160)}\n`)
          return
        }
        const cols = process.stderr.columns ?? 80
        process.stderr.write(`\r\x1b[2K  ${line.slice(0, Math.max(10, cols - 4))}`)
        pending = true
        return
      }
    }
  }
  return {
    report: (event: ProgressEvent) => Effect.sync(() => render(event)),
    done: () => {
      clear()
      if (timings) process.stderr.write(`• done (+${Date.now() - t0} ms)\n`)
    }
  }
}
