/**
 * The embedded default manifest, used when no bottle.yaml is found: Claude Code in a docker
 * bottle that reaches what Claude Code itself calls, and nothing else. The credential route
 * follows what the host has: a Claude Code OAuth token (preferred) or an Anthropic API key,
 * injected on api.anthropic.com only.
 *
 * The other hosts carry no credential (the agent holds a placeholder, never a secret), and
 * each is Anthropic's own exact name, never a wildcard on a shared service (`*.sentry.io` or
 * a Datadog intake would let the agent post to anyone's account there). Found in Claude Code
 * 2.1.x's CLI and docs (see docs/egress.md, "The default Claude bottle"):
 * - platform.claude.com: OAuth (token refresh, `/v1/oauth/token`), account and settings links;
 * - claude.ai: the claude.ai account side (login, usage, connectors);
 * - statsig.anthropic.com: feature flags;
 * - o1158394.ingest.us.sentry.io: Anthropic's error reporting project (off by default in a
 *   bottle, DISABLE_ERROR_REPORTING=1; routed so turning it on works).
 */
export const CLAUDE_CODE_HOSTS: ReadonlyArray<string> = ["platform.claude.com", "claude.ai", "statsig.anthropic.com", "o1158394.ingest.us.sentry.io"]
export const DEFAULT_MANIFEST_NAME = "<built-in default manifest>"

export const defaultManifestYaml = (env: Record<string, string | undefined>): string => {
  const useApiKey = !env["CLAUDE_CODE_OAUTH_TOKEN"] && !!env["ANTHROPIC_API_KEY"]
  const auth = useApiKey
    ? `        auth: { header: x-api-key, token_env: ANTHROPIC_API_KEY, alternates: [authorization] }
        roles: [anthropic_api_key]`
    : `        auth: { header: authorization, scheme: Bearer, token_env: CLAUDE_CODE_OAUTH_TOKEN, alternates: [x-api-key] }
        roles: [claude_code_oauth]`
  return `agents:
  claude:
    bottle: default
    provider: claude
bottles:
  default:
    backend: docker
    egress:
      routes:
      - host: api.anthropic.com
${auth}
${CLAUDE_CODE_HOSTS.map((h) => `      - host: ${h}\n`).join("")}    workspace: { copy_cwd: true, workdir: /workspace }
`
}
