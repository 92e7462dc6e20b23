/** Alerts: each stays until dismissed (`c`); a deploy-key revocation failure is shown first, loudest. */
import { Box, Text } from "ink"
import { visible } from "../../cli/render.ts"
import { type Alert } from "../model.ts"
import { useBorderTint, useTint } from "./theme.tsx"

export const Alerts = (props: { readonly alerts: ReadonlyArray<Alert>; readonly width: number }) => {
  const tint = useTint()
  const border = useBorderTint()
  if (props.alerts.length === 0) return null
  const ordered = [...props.alerts].sort((a, b) => (a.kind === "revocation" ? 0 : 1) - (b.kind === "revocation" ? 0 : 1) || a.id - b.id)
  const shown = ordered.slice(0, 3)
  return (
    <Box flexDirection="column" borderStyle="single" {...border(ordered[0]!.kind === "info" ? "cyan" : "red")} width={props.width}>
      {shown.map((a) => (
        <Text key={a.id} {...tint(a.kind === "info" ? undefined : "red")} bold={a.kind === "revocation"} wrap="wrap">
          {a.kind === "revocation" ? "!! " : a.kind === "error" ? "! " : ""}
          {visible(a.text)}
        </Text>
      ))}
      <Text dimColor>{props.alerts.length > shown.length ? `(+${props.alerts.length - shown.length} more) ` : ""}c dismisses</Text>
    </Box>
  )
}
