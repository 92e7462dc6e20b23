/**
 * The `claude` provider: how to run Claude Code in a bottle. A provider is a template: the
 * default argv, how the prompt is passed, where skills and MCP config go, and the env the
 * agent needs (DESIGN.md: placeholder credential, no nonessential traffic, trust trio).
 */
import type { RouteRole } from "../schema/Route.ts"

export const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
export const AGENT_HOME = "/home/node"
export const PROMPT_PATH = "/home/node/.bottle/prompt.md"
export const MCP_CONFIG_PATH = "/home/node/.bottle/mcp.json"
export const SKILLS_DIR = "/home/node/.claude/skills"

export interface ProviderTemplate {
  readonly defaultCommand: ReadonlyArray<string>
  readonly command: (base: ReadonlyArray<string>, opts: { readonly hasPrompt: boolean; readonly supervise: boolean }) => ReadonlyArray<string>
  readonly env: (roles: ReadonlySet<RouteRole>) => Record<string, string>
  readonly skillsDir: string
}

/** Not a secret: egress strips it and injects the real credential on the wire. */
export const PLACEHOLDER = "egress-placeholder"

export const claude: ProviderTemplate = {
  defaultCommand: ["claude"],
  command: (base, { hasPrompt, supervise }) => [
    ...base,
    ...(hasPrompt ? ["--append-system-prompt-file", PROMPT_PATH] : []),
    ...(supervise ? ["--mcp-config", MCP_CONFIG_PATH] : [])
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
