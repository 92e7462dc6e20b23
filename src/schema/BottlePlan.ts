/**
 * The resolved plan for one bottle: everything `launch` needs, nothing secret. `prepare`
 * produces it; the CLI shows it for confirmation; `launch` writes it to the bottle's state
 * dir, so `resume` and `stop` work from it later.
 */
import { Schema, SchemaTransformation } from "effect"
import { AgentColor, Backend, GitUpstream, Provider } from "./Manifest.ts"
import { DAEMON_NAMES } from "./BundleProtocol.ts"
import { Route } from "./Route.ts"

/** A daemon of the sidecar bundle: a row of the bundle protocol's table. */
export const Daemon = Schema.Literals(DAEMON_NAMES)
export type Daemon = typeof Daemon.Type

/** docker: the per-bottle internal network (agent + bundle) and egress network (bundle only). */
export const DockerRuntime = Schema.Struct({
  backend: Schema.Literal("docker"),
  internalNetwork: Schema.String,
  egressNetwork: Schema.String
})
/** smolmachines: the bundle container's per-bottle bridge, and the agent microVM's name. */
export const SmolmachinesRuntime = Schema.Struct({
  backend: Schema.Literal("smolmachines"),
  bundleNetwork: Schema.String,
  machine: Schema.String
})
/** What only one backend needs to know about a bottle, tagged by that backend. */
export const BackendRuntime = Schema.Union([DockerRuntime, SmolmachinesRuntime])
export type BackendRuntime = typeof BackendRuntime.Type

/**
 * Each backend's runtime part for a new bottle: a row per backend, no `if`s on names. `base` is
 * what the bottle's names start with, `bottle-<slug>-<state root id>` (src/programs/bottleNames.ts).
 */
export const runtimeFor: { readonly [B in Backend]: (base: string) => Extract<BackendRuntime, { readonly backend: B }> } = {
  docker: (base) => ({ backend: "docker", internalNetwork: `${base}-int`, egressNetwork: `${base}-ext` }),
  smolmachines: (base) => ({ backend: "smolmachines", bundleNetwork: `${base}-net`, machine: `${base}-agent` })
}

const planFields = {
  slug: Schema.String,
  agent: Schema.String,
  /** The agent's `label` and `color` from the manifest (for `bottle dash`). */
  label: Schema.optionalKey(Schema.String),
  color: Schema.optionalKey(AgentColor),
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
  /** The agent user's uid/gid in the sandbox, when not the image's 1000:1000 (src/programs/agentUser.ts). */
  agentUser: Schema.optionalKey(Schema.Struct({ uid: Schema.Number, gid: Schema.Number })),
  prompt: Schema.String,
  promptPath: Schema.String,
  skills: Schema.Array(Schema.Struct({ name: Schema.String, source: Schema.String })),
  /** The bottle's leased address block and the bundle's address in it: what the agent reaches. */
  network: Schema.Struct({
    subnetIndex: Schema.Number,
    subnet: Schema.String,
    bundleIp: Schema.String
  }),
  egress: Schema.Struct({
    routes: Schema.Array(Route),
    /** A request to a host no route names: refused (absent, `deny`) or queued for approval (`ask`). */
    onUnrouted: Schema.optionalKey(Schema.Literals(["deny", "ask"])),
    /** Env var names of tokens the bundle gets from the host; `present` on the host at plan time. */
    tokens: Schema.Array(Schema.Struct({ env: Schema.String, present: Schema.Boolean }))
  }),
  git: Schema.Struct({ upstreams: Schema.Array(GitUpstream) }),
  supervise: Schema.Boolean,
  /** Claude Code's permission prompts go to the approval queue (`supervise: { permission_prompts: true }`). */
  supervisePermissionPrompts: Schema.optionalKey(Schema.Boolean),
  /** How long a supervise request waits for an answer before it expires (default 30). */
  superviseExpireMinutes: Schema.optionalKey(Schema.Number),
  daemons: Schema.Array(Daemon),
  resources: Schema.Struct({ cpus: Schema.optionalKey(Schema.Number), memory: Schema.optionalKey(Schema.String) })
}

export const BottlePlan = Schema.Struct({
  version: Schema.Literal(2),
  ...planFields,
  /** Backend-specific parts; its `backend` is the plan's. */
  runtime: BackendRuntime
}).check(Schema.makeFilter((p) => p.runtime.backend === p.backend || `runtime.backend ${p.runtime.backend} disagrees with backend ${p.backend}`))
export type BottlePlan = typeof BottlePlan.Type

/** A plan.json written before plans carried a runtime (docker only): its network held the docker names. */
const BottlePlanV1 = Schema.Struct({
  version: Schema.Literal(1),
  ...planFields,
  network: Schema.Struct({ subnetIndex: Schema.Number, subnet: Schema.String, bundleIp: Schema.String, internal: Schema.String, egress: Schema.String })
})

/** A saved plan.json: the current shape, or a version-1 one read as the docker bottle it is. */
export const SavedBottlePlan = Schema.Union([
  BottlePlan,
  BottlePlanV1.pipe(Schema.decodeTo(BottlePlan, SchemaTransformation.transform({
    decode: ({ network: { internal, egress, ...network }, ...v1 }): typeof BottlePlan.Encoded => ({
      ...v1,
      version: 2,
      network,
      runtime: { backend: "docker", internalNetwork: internal, egressNetwork: egress }
    }),
    encode: ({ runtime, network, ...plan }) => ({
      ...plan,
      version: 1,
      network: { ...network, internal: runtime.backend === "docker" ? runtime.internalNetwork : "", egress: runtime.backend === "docker" ? runtime.egressNetwork : "" }
    })
  })))
])

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
