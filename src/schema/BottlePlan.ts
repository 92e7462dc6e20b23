/**
 * The resolved plan for one bottle: everything `launch` needs, nothing secret. `prepare`
 * produces it; the CLI shows it for confirmation; `launch` writes it to the bottle's state
 * dir, so `resume` and `stop` work from it later.
 */
import { Schema } from "effect"
import { Backend, GitUpstream, Provider } from "./Manifest.ts"
import { DAEMON_NAMES } from "./BundleProtocol.ts"
import { Route } from "./Route.ts"

/** A daemon of the sidecar bundle: a row of the bundle protocol's table. */
export const Daemon = Schema.Literals(DAEMON_NAMES)
export type Daemon = typeof Daemon.Type

export const BottlePlan = Schema.Struct({
  version: Schema.Literal(1),
  slug: Schema.String,
  agent: Schema.String,
  bottle: Schema.String,
  backend: Backend,
  provider: Provider,
  manifestFile: Schema.String,
  cwd: Schema.String,
  /** argv run in the sandbox when attaching. */
  command: Schema.Array(Schema.String),
  /** The agent's environment: plain values and placeholders only. */
  env: Schema.Record(Schema.String, Schema.String),
  workdir: Schema.String,
  copyCwd: Schema.Boolean,
  /** Bind-mount the cwd at workdir (read-write) instead of copying it. */
  mountCwd: Schema.optionalKey(Schema.Boolean),
  prompt: Schema.String,
  promptPath: Schema.String,
  skills: Schema.Array(Schema.Struct({ name: Schema.String, source: Schema.String })),
  network: Schema.Struct({
    subnetIndex: Schema.Number,
    subnet: Schema.String,
    bundleIp: Schema.String,
    internal: Schema.String,
    egress: Schema.String
  }),
  egress: Schema.Struct({
    routes: Schema.Array(Route),
    /** Env var names of tokens the bundle gets from the host; `present` on the host at plan time. */
    tokens: Schema.Array(Schema.Struct({ env: Schema.String, present: Schema.Boolean }))
  }),
  git: Schema.Struct({ upstreams: Schema.Array(GitUpstream) }),
  supervise: Schema.Boolean,
  daemons: Schema.Array(Daemon),
  resources: Schema.Struct({ cpus: Schema.optionalKey(Schema.Number), memory: Schema.optionalKey(Schema.String) })
})
export type BottlePlan = typeof BottlePlan.Type

/** What the state dir records about a launched bottle beyond its plan. */
export const BottleMeta = Schema.Struct({
  slug: Schema.String,
  backend: Backend,
  createdAt: Schema.String,
  agentImage: Schema.optionalKey(Schema.String),
  bundleImage: Schema.optionalKey(Schema.String),
  deployKeys: Schema.Array(Schema.Struct({
    provider: Schema.Literals(["github", "gitea"]),
    apiUrl: Schema.String,
    repo: Schema.String,
    id: Schema.Number,
    title: Schema.String,
    tokenEnv: Schema.String
  }))
})
export type BottleMeta = typeof BottleMeta.Type
