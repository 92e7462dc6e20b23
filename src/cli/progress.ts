/**
 * Launch progress on stderr: one line per step, and build output folded into a single
 * rewritten status line on a terminal (never dumped over the prompt).
 */
const LABELS: Record<string, string> = {
  state: "writing bottle state",
  "deploy-keys": "creating deploy keys",
  images: "checking images",
  networks: "creating networks (internal, egress)",
  bundle: "starting sidecar bundle",
  "bundle:ready": "waiting for the sidecar bundle to be ready",
  agent: "starting agent",
  provision: "provisioning agent"
}

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
  return {
    step: (s: string) => {
      clear()
      process.stderr.write(`• ${LABELS[s] ?? s}${timings ? ` (+${Date.now() - t0} ms; ${Math.round(performance.now())} ms since start)` : ""}\n`)
    },
    detail: (line: string) => {
      // Not a terminal (CI, logs): only the build's step headers, one per line.
      if (!tty) {
        if (/^Step \d+\/\d+ :/.test(line)) process.stderr.write(`  ${line.slice(0, 160)}\n`)
        return
      }
      const cols = process.stderr.columns ?? 80
      process.stderr.write(`\r\x1b[2K  ${line.slice(0, Math.max(10, cols - 4))}`)
      pending = true
    },
    done: () => {
      clear()
      if (timings) process.stderr.write(`• done (+${Date.now() - t0} ms)\n`)
    }
  }
}
