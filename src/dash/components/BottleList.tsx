/** The bottles list: one line each, with label/colour, status, backend, age and live counters. */
import { Box, Text } from "ink"
import { age, type DashRow, fit } from "../model.ts"
import { statusColor, useTint } from "./theme.tsx"

const pad = (s: string, n: number) => fit(s, n).padEnd(n)
const padStart = (s: string, n: number) => fit(s, n).padStart(n)

/** Columns: 76 characters, so a row fits 80 with room to spare. */
export const LIST_HEADER = `  ${pad("NAME", 18)} ${pad("LABEL", 12)} ${pad("STATUS", 9)} ${pad("BACKEND", 7)} ${padStart("AGE", 4)} ${padStart("OK/NO 5m", 9)} ${padStart("PUSH", 4)} ${padStart("ASK", 4)}`

export const BottleList = (props: {
  readonly rows: ReadonlyArray<DashRow>
  readonly selected: number
  readonly now: number
  readonly height: number
  readonly loaded: boolean
}) => {
  const tint = useTint()
  if (!props.loaded) return <Text>loading bottles…</Text>
  if (props.rows.length === 0) return <Text>no bottles — press s to start one</Text>
  const visible = Math.max(1, props.height - 1)
  const first = Math.min(Math.max(0, props.selected - visible + 1), Math.max(0, props.rows.length - visible))
  return (
    <Box flexDirection="column">
      <Text bold wrap="truncate">{LIST_HEADER}</Text>
      {props.rows.slice(first, first + visible).map((r, i) => {
        const sel = first + i === props.selected
        return (
          <Text key={r.slug} inverse={sel} wrap="truncate">
            {sel ? "> " : "  "}
            {pad(r.slug, 18)} <Text {...tint(r.color)}>{pad(r.label, 12)}</Text> <Text {...tint(statusColor(r.status))}>{pad(r.status, 9)}</Text>{" "}
            {pad(r.backend, 7)} {padStart(age(r.createdAt, props.now), 4)} {padStart(`${r.egress.allowed}/${r.egress.denied}`, 9)} {padStart(String(r.pushes), 4)}{" "}
            <Text {...tint(r.pending > 0 ? "yellow" : undefined)} bold={r.pending > 0}>{padStart(r.pending > 0 ? `${r.pending}!` : "0", 4)}</Text>
          </Text>
        )
      })}
    </Box>
  )
}
