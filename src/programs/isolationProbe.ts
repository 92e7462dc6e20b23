/**
 * The isolation probe (DESIGN.md, "Never trust a flag"): from inside a running sandbox, the
 * bundle's proxy port must answer and nothing outside the allowlist may. Backend-neutral: each
 * backend runs `probeArgv` in its sandbox with its own exec and hands the output to
 * `probeVerdict`.
 *
 * What "reachable" means: a TCP connect that succeeded, or that was refused — a refusal is a
 * host answering, so the address is reachable even if that port is closed (a network that
 * really blocks it drops the packet, or has no route). Timeouts and unreachable routes count
 * as blocked. All targets are tried at once; one that must not answer is given up on after
 * PROBE_TIMEOUT_MS, or three times the bundle's own connect time when the host is slow, so
 * the probe costs about one short timeout plus one exec.
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

/** How long a target that must not answer is waited for (at least): the probe is one of these plus an exec. */
export const PROBE_TIMEOUT_MS = 150
/** How long the bundle, which must answer, is waited for. */
export const BUNDLE_TIMEOUT_MS = 3000

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
// The bundle gets a long timeout (it answers, or the probe fails anyway). A target that must
// not answer is given up on after ${PROBE_TIMEOUT_MS} ms, or 3x the bundle's connect time if
// that is longer: on a loaded host a refusal can take longer than the floor, and a reachable
// address must never pass as a timeout. No timer outlives its target: the process exits as soon
// as the last target has an outcome (a pending bundle timer once held every start for 3 s).
const t0 = Date.now(); let bundleMs;
const one = (t) => new Promise((done) => {
  const s = net.connect({ host: t.host, port: t.port });
  let over = false, timer;
  const end = (outcome) => { if (over) return; over = true; clearTimeout(timer); s.destroy(); if (t.expect === "open" && bundleMs === undefined) bundleMs = outcome === "connected" ? Date.now() - t0 : 0; done({ ...t, outcome }); };
  s.on("connect", () => end("connected"));
  s.on("error", (e) => end(e.code === "ECONNREFUSED" ? "refused" : "blocked:" + (e.code || e.message)));
  if (t.expect === "open") { timer = setTimeout(() => end("timeout"), ${BUNDLE_TIMEOUT_MS}); return; }
  const check = () => {
    if (over) return;
    const limit = bundleMs === undefined ? Infinity : Math.max(${PROBE_TIMEOUT_MS}, 3 * bundleMs);
    if (Date.now() - t0 >= limit) end("timeout"); else setTimeout(check, 10);
  };
  setTimeout(check, ${PROBE_TIMEOUT_MS});
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
