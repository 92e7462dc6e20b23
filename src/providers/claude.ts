/**
 * The `claude` provider: how to run Claude Code in a bottle. A provider is a template: the
 * default argv, how the prompt is passed, where skills and MCP config go, and the env the
 * agent needs (DESIGN.md: placeholder credential, no nonessential traffic, trust trio).
 *
 * With supervise on, the supervise MCP server is configured at user scope (`mcpServers` in
 * ~/.claude.json, merged in at provisioning), so Claude Code connects to it without a
 * project-trust prompt and `claude mcp list` shows it; with `permission_prompts`, Claude Code's
 * own "may I run this?" questions go to the approval queue through
 * `--permission-prompt-tool mcp__supervise__permission_prompt`.
 */
import type { RouteRole } from "../schema/Route.ts"

export const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
export const AGENT_HOME = "/home/node"
export const PROMPT_PATH = "/home/node/.bottle/prompt.md"
/** Claude Code's user-scope config (its `mcpServers` are trusted without a project prompt). */
export const USER_CONFIG_PATH = "/home/node/.claude.json"
/** The MCP server's name in Claude Code (tools are `mcp__supervise__<tool>`). */
export const SUPERVISE_SERVER = "supervise"
export const PERMISSION_PROMPT_TOOL = `mcp__${SUPERVISE_SERVER}__permission_prompt`

/** The user-scope fragment that declares the supervise server at `url` (merged into USER_CONFIG_PATH). */
export const mcpUserConfig = (url: string) => ({ mcpServers: { [SUPERVISE_SERVER]: { type: "http", url } } })

export interface CommandOptions {
  readonly hasPrompt: boolean
  readonly supervise: boolean
  /** Claude Code's permission prompts go to the supervise queue. */
  readonly permissionPrompts?: boolean
}
export const SKILLS_DIR = "/home/node/.claude/skills"

export interface ProviderTemplate {
  readonly defaultCommand: ReadonlyArray<string>
  readonly command: (base: ReadonlyArray<string>, opts: CommandOptions) => ReadonlyArray<string>
  readonly env: (roles: ReadonlySet<RouteRole>) => Record<string, string>
  readonly skillsDir: string
}

/** Not a secret: egress strips it and injects the real credential on the wire. */
export const PLACEHOLDER = "egress-placeholder"

export const claude: ProviderTemplate = {
  defaultCommand: ["claude"],
  command: (base, { hasPrompt, supervise, permissionPrompts }) => [
    ...base,
    ...(hasPrompt ? ["--append-system-prompt-file", PROMPT_PATH] : []),
    ...(supervise && permissionPrompts ? ["--permission-prompt-tool", PERMISSION_PROMPT_TOOL] : [])
  ],
  env: (roles) => ({
    ...(roles.has("claude_code_oauth") ? { CLAUDE_CODE_OAUTH_TOKEN: PLACEHOLDER } : {}),
    ...(roles.has("anthropic_api_key") ? { ANTHROPIC_API_KEY: PLACEHOLDER } : {}),
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_ERROR_REPORTING: "1",
    DISABLE_AUTOUPDATER: "1",
    NODE_EXTRA_CA_CERTS: SYSTEM_CA_BUNDLE,
    SSL_CERT_FILE: SYSTEM_CA_BUNDLE,
    REQUESTS_CA_BUNDLE: SYSTEM_CA_BUNDLE
  }),
  skillsDir: SKILLS_DIR
}

export const providers = { claude } as const
