/**
 * The manifest (`bottle.yaml`): agents and the bottles they run in. This Schema is the single
 * source of truth: the loader decodes with it (unknown keys are errors), `bottle schema`
 * derives the editor JSON Schema from it, and the egress daemon shares its `Route`.
 *
 * Guarantees: tokens are referenced by env-var name only; nothing here holds a secret value.
 */
import { Schema } from "effect"
import { EnvVarName, OnUnrouted, Route } from "./Route.ts"

export { EnvVarName }

const Name = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(/^[a-z][a-z0-9-]{0,30}$/u, {
      message: "expected a name of lower-case letters, digits and '-', starting with a letter (at most 31 characters)"
    })
  )
)

// Record keys are plain strings here and their names checked after decoding (loadManifest):
// a key schema that fails would otherwise be reported as "unknown key", which misleads.
const EnvMap = Schema.Record(Schema.String, Schema.String).annotate({
  description: "Environment variables (plain values: never secrets; tokens go through egress routes)"
})

export const Provider = Schema.Literals(["claude"])
export type Provider = typeof Provider.Type

/** The dashboard's palette (terminal colour names): an agent's `color` is one of these. */
export const AGENT_COLORS = ["red", "green", "yellow", "blue", "magenta", "cyan", "white", "gray"] as const
export const AgentColor = Schema.Literals(AGENT_COLORS)
export type AgentColor = typeof AgentColor.Type

/** A short label for lists (`bottle dash`): letters, digits, space, '.', '_', '-'; at most 12 characters. */
export const AgentLabel = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(/^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,11}$/u, {
      message: "expected a short label: letters, digits, space, '.', '_' or '-', starting with a letter or digit (at most 12 characters)"
    })
  )
)

export const Agent = Schema.Struct({
  bottle: Name.annotate({ description: "The bottle (key of `bottles`) this agent runs in" }),
  provider: Schema.optionalKey(Provider).annotate({ description: "How to run the agent (default claude)" }),
  command: Schema.optionalKey(Schema.NonEmptyArray(Schema.String)).annotate({
    description: "argv to run in the sandbox (default from the provider)"
  }),
  prompt: Schema.optionalKey(Schema.String).annotate({
    description: "System prompt to append: inline markdown, or a path to a .md file (relative to the manifest)"
  }),
  skills: Schema.optionalKey(Schema.Array(Schema.String)).annotate({
    description: "Skill directories (relative to the manifest) copied into the agent's skills dir"
  }),
  env: Schema.optionalKey(EnvMap),
  label: Schema.optionalKey(AgentLabel).annotate({ description: "Short label shown by `bottle dash` (default: the agent's name)" }),
  color: Schema.optionalKey(AgentColor).annotate({ description: "The agent's colour in `bottle dash`: red, green, yellow, blue, magenta, cyan, white or gray" })
})
export type Agent = typeof Agent.Type

export const Backend = Schema.Literals(["docker", "smolmachines"])
export type Backend = typeof Backend.Type

const RefPattern = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(/^refs\/[A-Za-z0-9._\/*-]+$/u, { message: 'expected a ref pattern like "refs/heads/agent/*"' })
  )
)

export const PushPolicy = Schema.Struct({
  allow: Schema.optionalKey(Schema.Array(RefPattern)).annotate({
    description: "Ref patterns the agent may push (default refs/heads/bottle/*)"
  }),
  force: Schema.optionalKey(Schema.Boolean).annotate({ description: "Allow non-fast-forward pushes (default false)" }),
  delete: Schema.optionalKey(Schema.Boolean).annotate({ description: "Allow deleting refs (default false)" }),
  tags: Schema.optionalKey(Schema.Boolean).annotate({ description: "Allow pushing tags (default false)" })
})
export type PushPolicy = typeof PushPolicy.Type

export const DeployKey = Schema.Struct({
  provider: Schema.Literals(["github", "gitea"]),
  api_url: Schema.optionalKey(
    Schema.String.pipe(Schema.check(Schema.isPattern(/^https?:\/\/\S+$/u, { message: "expected an http(s) URL" })))
  ).annotate({ description: "The git host's API base (default https://api.github.com for github; required for gitea)" }),
  repo: Schema.String.pipe(
    Schema.check(Schema.isPattern(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/u, { message: 'expected "owner/name"' }))
  ),
  token_env: EnvVarName.annotate({ description: "Env var holding the API token that may create deploy keys" })
}).check(
  // GitHub's API has one address; a Gitea server's is wherever it runs: nothing to default to.
  Schema.makeFilter(
    (k) => k.provider !== "gitea" || k.api_url !== undefined || { path: ["api_url"], issue: "required for a gitea deploy key (the server's API base, e.g. https://gitea.example.com/api/v1)" },
    // (api_url named in `then` too: a validator's strict mode wants each required key defined beside it.)
    { toJsonSchema: () => ({ if: { properties: { provider: { const: "gitea" } } }, then: { properties: { api_url: { type: "string" } }, required: ["api_url"] } }) }
  )
)
export type DeployKey = typeof DeployKey.Type

export const GitUpstream = Schema.Struct({
  name: Name,
  url: Schema.String.pipe(
    Schema.check(
      Schema.isPattern(/^(?:ssh:\/\/\S+|[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:\S+|https?:\/\/\S+|file:\/\/\S+)$/u, {
        message: "expected a git URL (ssh://…, user@host:path, https://… or file://…)"
      })
    )
  ),
  identity_file: Schema.optionalKey(Schema.String),
  deploy_key: Schema.optionalKey(DeployKey),
  known_hosts_file: Schema.optionalKey(Schema.String),
  push: Schema.optionalKey(PushPolicy)
})
export type GitUpstream = typeof GitUpstream.Type

const MemorySize = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[1-9][0-9]*[kmgKMG]?$/u, { message: 'expected a size like "4g" or "512m"' }))
)

export const Bottle = Schema.Struct({
  backend: Schema.optionalKey(Backend).annotate({ description: "docker (default) or smolmachines" }),
  env: Schema.optionalKey(EnvMap),
  egress: Schema.optionalKey(Schema.Struct({ routes: Schema.Array(Route), on_unrouted: Schema.optionalKey(OnUnrouted) })),
  git: Schema.optionalKey(Schema.Struct({ upstreams: Schema.Array(GitUpstream) })),
  supervise: Schema.optionalKey(
    Schema.Union([
      Schema.Boolean,
      Schema.Struct({
        permission_prompts: Schema.optionalKey(Schema.Boolean).annotate({
          description: "Route Claude Code's own permission prompts to the approval queue (--permission-prompt-tool mcp__supervise__permission_prompt; used by headless runs, claude -p)"
        }),
        expire_minutes: Schema.optionalKey(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 10080 })))).annotate({
          description: "An unanswered request expires (as expired, never approved) after this many minutes (default 30)"
        })
      })
    ])
  ).annotate({ description: "Run the supervise MCP server: the agent asks the operator for approval (`bottle approvals`, `bottle approve ID`)" }),
  workspace: Schema.optionalKey(
    Schema.Struct({
      copy_cwd: Schema.optionalKey(Schema.Boolean).annotate({ description: "Copy the current directory into the sandbox (a snapshot; the host copy is untouched)" }),
      mount_cwd: Schema.optionalKey(Schema.Boolean).annotate({
        description: "Bind-mount the current directory read-write at workdir instead: the agent edits your files in place"
      }),
      workdir: Schema.optionalKey(
        Schema.String.pipe(Schema.check(Schema.isPattern(/^\/[A-Za-z0-9._\/-]*$/u, { message: "expected an absolute path of letters, digits, '.', '_', '-' and '/'" })))
      )
    })
  ),
  resources: Schema.optionalKey(
    Schema.Struct({
      cpus: Schema.optionalKey(Schema.Finite.pipe(Schema.check(Schema.isBetween({ minimum: 0.1, maximum: 256 })))),
      memory: Schema.optionalKey(MemorySize)
    })
  )
})
export type Bottle = typeof Bottle.Type

export const Manifest = Schema.Struct({
  agents: Schema.Record(Schema.String, Agent),
  bottles: Schema.Record(Schema.String, Bottle)
}).annotate({ title: "bot-bottle manifest (bottle.yaml)" })
export type Manifest = typeof Manifest.Type
