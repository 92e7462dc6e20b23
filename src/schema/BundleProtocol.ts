/**
 * The bundle protocol: the one table of the sidecar bundle's daemons, and what the host and the
 * bundle must agree on about them. The bundle's init (which daemons to start, how each says it
 * is ready, what a crash looks like), the launcher (the bundle's env and mounts), the image
 * build (one entry per built daemon) and `bottle daemon` all read this table; nothing else
 * lists the daemons. Adding a daemon is one row here plus its code.
 *
 * Guarantees:
 *   - a daemon sees only its own subdir of the bottle's state: the host's
 *     `<state>/bottles/<slug>/<subdir>` is mounted at `/run/bottle/<subdir>`, one mount per
 *     daemon the plan runs (a bottle without git-gate never has git-gate's keys in its bundle);
 *   - each daemon's variables carry its own prefix, and the init hands a daemon none of the
 *     other daemons' variables, so no daemon is told another one's directory;
 *   - the bundle reports `bottle-bundle: ready (…)` once every daemon said `ready` on its pipe,
 *     or `bottle-bundle: unhealthy: …` when one is missing or exits (never restarted silently).
 *
 * What it does not guarantee: the daemons of one bundle run as one uid, so a daemon taken over
 * could still read a sibling's mount. Separate uids per daemon are future work (see docs).
 *
 * The bundle may import this module (src/schema is the shared contract); src/ never imports
 * the bundle's internals. Plain TypeScript (no Effect): the init imports it, and PID 1's
 * start-up is on every launch's critical path.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { BottlePlan } from "./BottlePlan.ts"
import { EGRESS_PORT, GIT_GATE_PORT, SUPERVISE_PORT } from "./Bundle.ts"

/** Where the per-bottle tree is mounted in the bundle: one subdir per daemon. */
export const BUNDLE_STATE_ROOT = "/run/bottle"

/** Every line the init writes starts with this. */
export const BUNDLE_LOG_PREFIX = "bottle-bundle: "
/** The lines launch waits for in the bundle's log. */
export const READY_LINE = "bottle-bundle: ready"
export const UNHEALTHY_LINE = "bottle-bundle: unhealthy"
/** Where the init records `starting`, `ready` or `unhealthy: …` (the image's health check reads it). */
export const DEFAULT_STATUS_FILE = "/tmp/bottle-status"
/** The descriptor (in the daemon) of the pipe on which it writes `ready` once it accepts connections. */
export const READY_FD = 3
/** What a daemon writes, on its own line, to $BOTTLE_READY_FD. */
export const READY_WORD = "ready"

/**
 * Readiness, as the init asks for it (`readiness: "ready-fd"`): with `$BOTTLE_READY_FD` set,
 * write `ready` to that descriptor (a pipe the init holds) once the daemon accepts
 * connections, then close it. The init needs no polling, and learns it the moment it is true.
 * Without the variable (a daemon run by hand), nothing is written.
 */
export const notifyReady = (env: Readonly<Record<string, string | undefined>>): void => {
  const fd = Number(env["BOTTLE_READY_FD"] ?? NaN)
  if (!Number.isInteger(fd) || fd < 3) return
  try {
    fs.writeSync(fd, `${READY_WORD}\n`)
    fs.closeSync(fd)
  } catch {
    // No init listening (the descriptor is not ours): nothing to tell.
  }
}

/** Variables every daemon gets (the init's own, shared by all). */
export const COMMON_ENV = ["BOTTLE_SLUG", "BOTTLE_DAEMONS", "BOTTLE_STATUS_FILE", "BOTTLE_READY_FD"] as const

/** What the launcher knows that a daemon's environment is computed from. */
export interface DaemonEnvInput {
  /** The daemon's dir inside the bundle (`/run/bottle/<subdir>`). */
  readonly dir: string
  /** The port it listens on (all interfaces in the bundle). */
  readonly port: number
  /** Files present in its host subdir at launch (relative names), e.g. `extra-ca.pem`. */
  readonly has: (file: string) => boolean
}

export interface DaemonRow {
  readonly name: string
  readonly port: number
  /** Its subdir of the bottle's state dir on the host, and of BUNDLE_STATE_ROOT in the bundle. */
  readonly stateSubdir: string
  /** Prefix of every variable of its own; the init hides them from the other daemons. */
  readonly envPrefix: string
  /** Its variables (each named with envPrefix). Secrets never go here: they are passed apart. */
  readonly env: (input: DaemonEnvInput) => Readonly<Record<string, string>>
  /** How the init learns it accepts connections: it writes READY_WORD to READY_FD. */
  readonly readiness: "ready-fd"
  /**
   * Its build: `source` is bundled to `dist/<entry>.mjs`, which the init spawns. Absent: the
   * daemon is planned but not built in this version; a bundle asked to run it is unhealthy.
   */
  readonly build?: { readonly source: string; readonly entry: string }
}

/** The table. Keys are the daemons' names (the plan's `daemons`). */
export const DAEMONS = {
  egress: {
    name: "egress",
    port: EGRESS_PORT,
    stateSubdir: "egress",
    envPrefix: "BOTTLE_EGRESS_",
    // routes.yaml, ca.pem, ca-key.pem (0600), audit.log; extra-ca.pem when the host has extra upstream CAs.
    env: ({ dir, port, has }) => ({
      BOTTLE_EGRESS_DIR: dir,
      BOTTLE_EGRESS_LISTEN: `0.0.0.0:${port}`,
      ...(has("extra-ca.pem") ? { BOTTLE_EGRESS_EXTRA_CA: `${dir}/extra-ca.pem` } : {})
    }),
    readiness: "ready-fd",
    build: { source: "bundle/egress/main.ts", entry: "egress-daemon" }
  },
  "git-gate": {
    name: "git-gate",
    port: GIT_GATE_PORT,
    stateSubdir: "git-gate",
    envPrefix: "BOTTLE_GIT_GATE_",
    // gate.json (src/schema/GitGate.ts), keys/<upstream>: the deploy keys' private halves
    // (0600), known_hosts/<upstream>, all written by the launcher; audit.log, by the gate.
    // Upstream i is served on port + i.
    env: ({ dir, port }) => ({ BOTTLE_GIT_GATE_DIR: dir, BOTTLE_GIT_GATE_LISTEN: `0.0.0.0:${port}` }),
    readiness: "ready-fd",
    build: { source: "bundle/git-gate/main.ts", entry: "git-gate-daemon" }
  },
  supervise: {
    name: "supervise",
    port: SUPERVISE_PORT,
    stateSubdir: "supervise",
    envPrefix: "BOTTLE_SUPERVISE_",
    // requests/<id>.json (the daemon's), answers/<id>.json (the host's): the approval queue.
    env: ({ dir, port }) => ({ BOTTLE_SUPERVISE_DIR: dir, BOTTLE_SUPERVISE_LISTEN: `0.0.0.0:${port}` }),
    readiness: "ready-fd",
    build: { source: "bundle/supervise/main.ts", entry: "supervise-daemon" }
  }
} as const satisfies Record<string, DaemonRow>

export type DaemonName = keyof typeof DAEMONS
export const DAEMON_NAMES = Object.keys(DAEMONS) as ReadonlyArray<DaemonName>
/** The table as rows, in order. */
export const DAEMON_TABLE: ReadonlyArray<DaemonRow> = Object.values(DAEMONS)

export const isBuilt = (row: DaemonRow): boolean => row.build !== undefined
export const builtDaemons = (table: ReadonlyArray<DaemonRow> = DAEMON_TABLE): ReadonlyArray<DaemonRow> => table.filter(isBuilt)
/** The daemons of `names` this version cannot run (the plan is shown, the start refused). */
export const notBuiltDaemons = (names: ReadonlyArray<string>, table: ReadonlyArray<DaemonRow> = DAEMON_TABLE): ReadonlyArray<string> =>
  names.filter((n) => !table.some((r) => r.name === n && isBuilt(r)))

/** A daemon's dir inside the bundle. */
export const bundleDirOf = (row: Pick<DaemonRow, "stateSubdir">): string => path.posix.join(BUNDLE_STATE_ROOT, row.stateSubdir)
/** A daemon's dir on the host, under the bottle's state dir. */
export const hostDirOf = (bottleDir: string, row: Pick<DaemonRow, "stateSubdir">): string => path.join(bottleDir, row.stateSubdir)

/** `$BOTTLE_DAEMONS` as the init reads it: comma-separated names. */
export const parseDaemonList = (text: string | undefined): ReadonlyArray<string> =>
  (text ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0)

export interface BundleMount {
  readonly source: string
  readonly target: string
  readonly readonly: boolean
}

/** What the launcher gives the bundle container: its (non-secret) environment and its mounts. */
export interface BundleRunSpec {
  readonly env: Readonly<Record<string, string>>
  readonly mounts: ReadonlyArray<BundleMount>
}

/**
 * The bundle's environment and mounts for `plan`, whose state dir on the host is `bottleDir`:
 * one mount per daemon the plan runs (its own subdir, nothing above it), and each daemon's
 * variables. `has(subdir, file)` says whether a file is in a daemon's host subdir at launch.
 * Unknown daemon names are passed on in BOTTLE_DAEMONS (the init refuses them, by name).
 */
export const bundleRunSpec = (
  plan: Pick<BottlePlan, "slug" | "daemons">,
  bottleDir: string,
  has: (subdir: string, file: string) => boolean = () => false,
  table: ReadonlyArray<DaemonRow> = DAEMON_TABLE
): BundleRunSpec => {
  const rows = plan.daemons.flatMap((name) => table.filter((r) => r.name === name))
  return {
    env: Object.assign(
      { BOTTLE_SLUG: plan.slug, BOTTLE_DAEMONS: plan.daemons.join(",") },
      ...rows.map((r) => r.env({ dir: bundleDirOf(r), port: r.port, has: (file) => has(r.stateSubdir, file) }))
    ),
    mounts: rows.map((r) => ({ source: hostDirOf(bottleDir, r), target: bundleDirOf(r), readonly: false }))
  }
}

/**
 * The environment the init gives daemon `row`: its own, without any other daemon's variables
 * (by their prefixes).
 */
export const envForDaemon = (
  env: Readonly<Record<string, string | undefined>>,
  row: DaemonRow,
  table: ReadonlyArray<DaemonRow> = DAEMON_TABLE
): Record<string, string> => {
  const others = table.filter((r) => r.name !== row.name).map((r) => r.envPrefix)
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && !others.some((p) => k.startsWith(p))) out[k] = v
  }
  return out
}
