/**
 * The embedded default manifest, used when no bottle.yaml is found: Claude Code in a docker
 * bottle whose only route is the Anthropic API. The credential route follows what the host
 * has: a Claude Code OAuth token (preferred) or an Anthropic API key.
 */
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
    workspace: { copy_cwd: true, workdir: /workspace }
`
}
