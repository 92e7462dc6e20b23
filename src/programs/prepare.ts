/**
 * prepare: pure resolution. Manifest + agent + cwd → a BottlePlan. It reads files the manifest
 * names (prompt, skills) and peeks at the lease table to show the subnet the bottle would get,
 * but it starts nothing, builds nothing and writes nothing: the plan can be shown and
 * declined with nothing left behind.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import * as YAML from "yaml"
import { claude, PROMPT_PATH } from "../providers/claude.ts"
import { proxyEnv, SUBNET_POOL, SUBNET_POOL_SIZE, subnetFor, SUPERVISE_URL_VARIABLE, superviseUrl } from "../schema/Bundle.ts"
import { gateUrl } from "../schema/GitGate.ts"
import { type BottlePlan, type Daemon, runtimeFor } from "../schema/BottlePlan.ts"
import type { Backend } from "../schema/Manifest.ts"
import { ManifestError, type ManifestProblem } from "../schema/ManifestError.ts"
import type { RouteRole } from "../schema/Route.ts"
import { findSecretLines } from "../schema/SecretPatterns.ts"
import { StateStore } from "../services/StateStore.ts"
import { bottleNames } from "./bottleNames.ts"
import { type LoadedManifest, yamlProblem } from "./loadManifest.ts"
import { agentIdsFor, IMAGE_AGENT_ID, workspaceOwner } from "./agentUser.ts"
import { mountRefusal } from "./workspace.ts"

export interface PrepareInput {
  readonly loaded: LoadedManifest
  readonly agent: string
  readonly cwd: string
  readonly env: Record<string, string | undefined>
  /** --backend or BOTTLE_BACKEND; overrides the manifest. */
  readonly backend?: Backend | undefined
  /** --name; default `<agent>-<hash of cwd>`. */
  readonly name?: string | undefined
}

export const defaultSlug = (agent: string, cwd: string) =>
  `${agent}-${createHash("sha256").update(path.resolve(cwd)).digest("hex").slice(0, 6)}`

/**
 * A prompt names a file when it is one word that ends in .md or holds a `/` (./x, ../x, /x, ~/x,
 * docs/agent-prompt.txt); anything else is inline markdown, even when it mentions a file
 * ("Always read CONTRIBUTING.md"). A missing file is an error, never inline text.
 */
export const isPromptPath = (prompt: string): boolean => {
  const p = prompt.trim()
  return p !== "" && !/\s/.test(p) && (/\.md$/i.test(p) || p.includes("/"))
}

/**
 * A prompt file's text: front matter (`---` lines around YAML, metadata for humans and tools)
 * is checked and dropped; a credential anywhere in the file is refused, since the prompt is
 * handed to the agent. Problems carry the line in the prompt file.
 */
export const readPromptText = (text: string): { readonly prompt: string } | { readonly problem: Omit<ManifestProblem, "path"> } => {
  const secret = findSecretLines(text)[0]
  if (secret) {
    return { problem: { line: secret.line, message: `looks like a literal secret (${secret.pattern.name}) in the prompt file; the prompt is handed to the agent: remove it` } }
  }
  if (!/^---[ \t]*\r?\n/.test(text)) return { prompt: text }
  const m = text.match(/^---[ \t]*\r?\n(?:([\s\S]*?)\r?\n)?---[ \t]*(?:\r?\n|$)/)
  if (!m) return { problem: { line: 1, message: "front matter opened with --- is never closed (expected a line ---)" } }
  const doc = YAML.parseDocument(m[1] ?? "", { uniqueKeys: true, prettyErrors: true })
  const error = doc.errors[0]
  if (error) {
    // Line 1 is the opening ---; the front matter's own line 1 is the file's line 2.
    const { path: _, ...problem } = yamlProblem(error, doc, { subject: "front matter", lineOffset: 1 })
    return { problem: { ...problem, message: `front matter: ${problem.message}` } }
  }
  if (doc.contents !== null && !YAML.isMap(doc.contents) && !(YAML.isScalar(doc.contents) && doc.contents.value === null)) {
    return { problem: { line: 2, message: "front matter: expected a mapping of keys (name: ..., description: ...)" } }
  }
  return { prompt: text.slice(m[0].length) }
}

const expandHome = (p: string) => (p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p)

/** What a skill directory may hold, at most (a skill is a few markdown files and scripts). */
const SKILL_MAX_FILES = 500
const SKILL_MAX_BYTES = 20 * 1024 * 1024
const SCANNED_FILE_MAX = 1024 * 1024

/**
 * Why a skill directory must not be copied into the sandbox, if it must not: the home
 * directory, the filesystem root or one of their ancestors; more than a skill's worth of files;
 * or a file holding something that looks like a credential (private key blocks, known token
 * prefixes, passwords in URLs). Symbolic links are not followed (the copy keeps them as links).
 */
const skillRefusal = (dir: string): string | undefined => {
  const real = fs.realpathSync(dir)
  const home = fs.realpathSync(os.homedir())
  if (real === path.parse(real).root || home === real || home.startsWith(real + path.sep)) {
    return `refusing to copy ${dir} into the sandbox as a skill: it is ${real === path.parse(real).root ? "the filesystem root" : "your home directory or holds it"}`
  }
  let files = 0
  let bytes = 0
  const stack = [real]
  while (stack.length > 0) {
    const d = stack.pop()!
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) stack.push(p)
      else if (e.isFile()) {
        files++
        const size = fs.statSync(p).size
        bytes += size
        if (files > SKILL_MAX_FILES || bytes > SKILL_MAX_BYTES) {
          return `refusing to copy ${dir} into the sandbox as a skill: more than ${SKILL_MAX_FILES} files or ${SKILL_MAX_BYTES / 1024 / 1024} MB (a skill is a few instructions and scripts)`
        }
        if (size <= SCANNED_FILE_MAX) {
          const hit = findSecretLines(fs.readFileSync(p, "latin1"))[0]
          if (hit) return `refusing to copy ${dir} into the sandbox as a skill: ${p}:${hit.line} looks like a credential (${hit.pattern.name})`
        }
      }
    }
  }
  return undefined
}

export const prepare = Effect.fn("prepare")(function*(input: PrepareInput) {
  const { loaded } = input
  const { manifest } = loaded
  const fail = (keyPath: ReadonlyArray<PropertyKey>, pathText: string, message: string) => {
    const pos = loaded.locate(keyPath)
    return new ManifestError({ file: loaded.file, problems: [{ ...(pos ? { line: pos.line, column: pos.column } : {}), path: pathText, message }] })
  }

  const agent = manifest.agents[input.agent]
  if (!agent) {
    const known = Object.keys(manifest.agents)
    return yield* fail(["agents"], "agents", `no agent named "${input.agent}" (defined: ${known.length ? known.join(", ") : "none"})`)
  }
  const bottle = manifest.bottles[agent.bottle]!
  const backend = input.backend ?? bottle.backend ?? "docker"
  const slug = input.name ?? defaultSlug(input.agent, input.cwd)
  if (!/^[a-z][a-z0-9-]{0,62}$/.test(slug)) {
    return yield* fail([], "--name", `invalid bottle name "${slug}": lower-case letters, digits and '-', starting with a letter`)
  }

  // Prompt: inline markdown, or a file relative to the manifest (see isPromptPath).
  let prompt = agent.prompt ?? ""
  if (agent.prompt !== undefined && isPromptPath(agent.prompt)) {
    const file = path.resolve(loaded.dir, expandHome(agent.prompt.trim()))
    const text = yield* Effect.try({
      try: () => fs.readFileSync(file, "utf8"),
      catch: (e) =>
        fail(["agents", input.agent, "prompt"], `agents.${input.agent}.prompt`, `prompt file ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)}); a prompt is read from a file when it is one word ending in .md or containing a /`)
    })
    const read = readPromptText(text)
    if ("problem" in read) {
      return yield* new ManifestError({ file, problems: [{ ...read.problem, path: `agents.${input.agent}.prompt` }] })
    }
    prompt = read.prompt
  }

  const skills: Array<{ name: string; source: string }> = []
  for (const [i, s] of (agent.skills ?? []).entries()) {
    const dir = path.resolve(loaded.dir, expandHome(s))
    const at = ["agents", input.agent, "skills", i] as const
    const where = `agents.${input.agent}.skills[${i}]`
    const ok = fs.existsSync(dir) && fs.statSync(dir).isDirectory()
    if (!ok) return yield* fail(at, where, `skill directory ${dir} does not exist`)
    // A skill is copied into the sandbox whole: never a tree holding the user's keys.
    const refusal = skillRefusal(dir)
    if (refusal) return yield* fail(at, where, refusal)
    skills.push({ name: path.basename(dir), source: dir })
  }

  // A read-write mount of the cwd hands the agent whatever is below it: never the home dir,
  // the filesystem root, or a tree holding bot-bottle's own state (routes, CA keys).
  if (bottle.workspace?.mount_cwd) {
    const cwd = path.resolve(input.cwd)
    const state = yield* StateStore
    const why = mountRefusal(cwd, os.homedir(), state.root)
    if (why) {
      return yield* fail(["bottles", agent.bottle, "workspace", "mount_cwd"], `bottles.${agent.bottle}.workspace.mount_cwd`, `refusing to mount ${cwd} read-write into the agent: it is ${why}; run from a project directory`)
    }
  }

  const routes = bottle.egress?.routes ?? []
  const roles = new Set<RouteRole>(routes.flatMap((r) => r.roles ?? []))
  const tokenEnvs = [...new Set([
    ...routes.flatMap((r) => (r.auth ? [r.auth.token_env] : [])),
    ...(bottle.git?.upstreams ?? []).flatMap((u) => (u.deploy_key ? [u.deploy_key.token_env] : []))
  ])]

  const state = yield* StateStore
  const subnetIndex = yield* state.peekLease(SUBNET_POOL, SUBNET_POOL_SIZE, slug)
  const { subnet, bundleIp } = subnetFor(subnetIndex)
  const names = bottleNames(state.root, slug)

  const supervise = bottle.supervise !== undefined && bottle.supervise !== false
  const permissionPrompts = typeof bottle.supervise === "object" && bottle.supervise.permission_prompts === true
  const expireMinutes = typeof bottle.supervise === "object" ? bottle.supervise.expire_minutes : undefined
  const upstreams = bottle.git?.upstreams ?? []
  const daemons: Array<Daemon> = ["egress", ...(upstreams.length > 0 ? (["git-gate"] as const) : []), ...(supervise ? (["supervise"] as const) : [])]
  const template = claude
  const workdir = bottle.workspace?.workdir ?? "/workspace"
  const agentUser = agentIdsFor(workspaceOwner(input.cwd))

  const plan: BottlePlan = {
    version: 2,
    slug,
    agent: input.agent,
    ...(agent.label !== undefined ? { label: agent.label } : {}),
    ...(agent.color !== undefined ? { color: agent.color } : {}),
    bottle: agent.bottle,
    backend,
    provider: agent.provider ?? "claude",
    manifestFile: loaded.file,
    cwd: path.resolve(input.cwd),
    command: [...template.command(agent.command ?? template.defaultCommand, { hasPrompt: prompt.trim() !== "", supervise, permissionPrompts })],
    env: {
      ...template.env(roles),
      ...proxyEnv(bundleIp),
      ...(upstreams.length > 0 ? { GIT_GATE_URL: gateUrl(bundleIp, 0, upstreams[0]!.name) } : {}),
      // The supervise MCP endpoint is on the bundle, not through the proxy.
      NO_PROXY: supervise ? `localhost,127.0.0.1,::1,${bundleIp}` : "localhost,127.0.0.1,::1",
      no_proxy: supervise ? `localhost,127.0.0.1,::1,${bundleIp}` : "localhost,127.0.0.1,::1",
      ...(supervise ? { [SUPERVISE_URL_VARIABLE]: superviseUrl(bundleIp) } : {}),
      ...bottle.env,
      ...agent.env
    },
    workdir,
    copyCwd: bottle.workspace?.copy_cwd ?? false,
    ...(bottle.workspace?.mount_cwd ? { mountCwd: true } : {}),
    ...(agentUser.uid !== IMAGE_AGENT_ID || agentUser.gid !== IMAGE_AGENT_ID ? { agentUser } : {}),
    prompt,
    promptPath: PROMPT_PATH,
    skills,
    network: { subnetIndex, subnet, bundleIp },
    runtime: runtimeFor[backend](names.base),
    egress: {
      routes,
      tokens: tokenEnvs.map((env) => ({ env, present: !!input.env[env] })),
      ...(bottle.egress?.on_unrouted === "ask" ? { onUnrouted: "ask" as const } : {})
    },
    git: { upstreams },
    supervise,
    ...(permissionPrompts ? { supervisePermissionPrompts: true } : {}),
    ...(expireMinutes !== undefined ? { superviseExpireMinutes: expireMinutes } : {}),
    daemons,
    resources: { ...(bottle.resources?.cpus !== undefined ? { cpus: bottle.resources.cpus } : {}), ...(bottle.resources?.memory !== undefined ? { memory: bottle.resources.memory } : {}) }
  }
  return plan
})
