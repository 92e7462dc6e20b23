/**
 * What a person is told when an attached session ends (start, resume): what happened to the
 * bottle, and the next command, one they can run as printed (docs/lifecycle.md).
 */
import type { LaunchedBottle } from "../programs/launch.ts"

/** `kept`: the bottle keeps running after the session (it ran before it, or was detached from). */
export const sessionEnded = (slug: string, end: LaunchedBottle, kept: boolean): string =>
  end.detached
    ? `detached from bottle ${slug}: it keeps running (the agent's command too). \`bottle resume ${slug}\` attaches a new session, \`bottle exec ${slug} bash\` a shell, \`bottle stop ${slug}\` stops it`
    : kept
    ? `the agent's command exited${end.exitCode ? ` (exit ${end.exitCode})` : ""}; bottle ${slug} keeps running: \`bottle resume ${slug}\` attaches again, \`bottle stop ${slug}\` stops it`
    : `the agent's command exited${end.exitCode ? ` (exit ${end.exitCode})` : ""}; bottle ${slug} stopped, its workspace and home kept: \`bottle resume ${slug}\` brings it back, \`bottle stop ${slug} --purge\` deletes it`
