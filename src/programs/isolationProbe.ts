/**
 * The isolation probe (DESIGN.md, "Never trust a flag"): from inside a running sandbox, the
 * bundle's proxy port must answer and nothing outside the allowlist may. Backend-neutral: each
 * backend runs `probeArgv` in its sandbox with its own exec and hands the output to
 * `probeVerdict`.
 *
 * What "reachable" means: a TCP connect that succeeded, or that was refused — a refusal is a
 * host answering, so the address is reachable even if that port is closed (a network that
 * really blocks it drops the packet, or has no route). Timeouts and unreachable routes count
 * as blocked. All targets are tried at once with a short timeout, so the probe costs about
 * one timeout plus one exec.
 *
 * Guarantees: a verdict is `ok` only when the bundle answered and every outside target was
 * blocked; output that cannot be read is a failed verdict, never a pass (fail closed).
 */
import { EGRESS_PORT } from "../schema/Bundle.ts"

export interface ProbeTarget {
  /** What the address stands for, for humans ("host gateway", "metadata service", ...). */
  readonly label: string
  readonly host: string
  readonly port: number
  /** open: must connect (the bundle); closed: must not be reachable. */
  readonly expect: "open" | "closed"
}

export interface ProbeResult {
  readonly label: string
  readonly host: string
  readonly port: number
  readonly outcome: string
  readonly ok: boolean
}

export interface ProbeReport {
  readonly ok: boolean
  readonly results: ReadonlyArray<ProbeResult>
  /** One line per failed target: what was reachable (or what did not answer). */
  readonly problems: ReadonlyArray<string>
  /** What to do about a failure, when the backend knows (e.g. the smolvm version to install). */
  readonly advice?: string
}

/** One line for a failed report: what was reachable, and what to do. */
export const probeFailureMessage = (report: ProbeReport): string =>
  `isolation probe failed, so the bottle was torn down: ${report.problems.join("; ")}${report.advice ? ` — ${report.advice}` : ""}`

/** Per-connect timeout: the whole probe is one of these plus an exec. */
export const PROBE_TIMEOUT_MS = 150

const PRIVATE_CANDIDATES = ["192.168.0.1", "172.16.0.1", "10.0.0.1"]
const inSlash16 = (ip: string, other: string) => ip.split(".").slice(0, 2).join(".") === other.split(".").slice(0, 2).join(".")

/**
 * The targets for a bottle whose bundle the sandbox reaches at `bundleAddress`, on the
 * bottle's subnet `subnet`. The host gateway is found inside the sandbox too (its default
 * route, if any), beside the subnet's first address.
 */
export const probeTargets = (bundleAddress: string, subnet: string): ReadonlyArray<ProbeTarget> => {
  const base = subnet.split("/")[0]!
  const firstAddress = base.replace(/\.\d+$/, ".1")
  const otherPrivate = PRIVATE_CANDIDATES.find((c) => !inSlash16(c, base)) ?? "192.168.0.1"
  return [
    { label: "the bundle's egress proxy", host: bundleAddress, port: EGRESS_PORT, expect: "open" },
    { label: "the bottle network's gateway", host: firstAddress, port: 443, expect: "closed" },
    { label: "another private range", host: otherPrivate, port: 443, expect: "closed" },
    { label: "a public address", host: "1.1.1.1", port: 443, expect: "closed" },
    { label: "the cloud metadata service", host: "169.254.169.254", port: 80, expect: "closed" }
  ]
}

/**
 * Run by node inside the sandbox: argv[1] is the targets' JSON. Adds the default route's
 * gateway (from /proc/net/route) as "the host gateway", connects to all at once, prints one
 * JSON array of {host, port, label, expect, outcome}.
 */
export const PROBE_SCRIPT = `
const net = require("net"), fs = require("fs");
const targets = JSON.parse(process.argv[1]);
try {
  for (const line of fs.readFileSync("/proc/net/route", "utf8").split("\\n").slice(1)) {
    const f = line.trim().split(/\\s+/);
    if (f[1] === "00000000" && f[2] && f[2] !== "00000000") {
      const g = Buffer.from(f[2], "hex"); const host = [g[3], g[2], g[1], g[0]].join(".");
      if (!targets.some((t) => t.host === host)) targets.push({ label: "the host gateway", host, port: 443, expect: "closed" });
    }
  }
} catch {}
const one = (t) => new Promise((done) => {
  const s = net.connect({ host: t.host, port: t.port });
  const end = (outcome) => { s.destroy(); done({ ...t, outcome }); };
  s.setTimeout(${PROBE_TIMEOUT_MS}, () => end("timeout"));
  s.on("connect", () => end("connected"));
  s.on("error", (e) => end(e.code === "ECONNREFUSED" ? "refused" : "blocked:" + (e.code || e.message)));
});
Promise.all(targets.map(one)).then((r) => { process.stdout.write(JSON.stringify(r) + "\\n"); });
`

export const probeArgv = (targets: ReadonlyArray<ProbeTarget>): ReadonlyArray<string> => ["node", "-e", PROBE_SCRIPT, JSON.stringify(targets)]

const reachable = (outcome: string) => outcome === "connected" || outcome === "refused"

/** The verdict on the probe's output (`stdout` of probeArgv); unreadable output fails. */
export const probeVerdict = (stdout: string): ProbeReport => {
  let rows: Array<ProbeTarget & { outcome: string }>
  try {
    const parsed = JSON.parse(stdout.trim().split("\n").pop() ?? "") as unknown
    if (!Array.isArray(parsed)) throw new Error("not an array")
    rows = parsed as Array<ProbeTarget & { outcome: string }>
  } catch {
    return { ok: false, results: [], problems: [`the probe printed nothing readable (${JSON.stringify(stdout.slice(0, 200))})`] }
  }
  const results = rows.map((r): ProbeResult => ({
    label: r.label,
    host: r.host,
    port: r.port,
    outcome: r.outcome,
    ok: r.expect === "open" ? r.outcome === "connected" : !reachable(r.outcome)
  }))
  const problems = results.filter((r) => !r.ok).map((r) =>
    rows.find((x) => x.host === r.host && x.port === r.port)?.expect === "open"
      ? `${r.label} (${r.host}:${r.port}) did not answer (${r.outcome})`
      : `${r.label} (${r.host}:${r.port}) is reachable (${r.outcome})`
  )
  if (!results.some((r) => rows.find((x) => x.host === r.host)?.expect === "open")) problems.push("the probe did not try the bundle")
  return { ok: problems.length === 0, results, problems }
}
