// Grafana's dashboard schema as it appears in JSON. @grafana/schema declares some fields as
// TypeScript string enums (ThresholdsMode, FieldColorModeId, ...); in a JSON file they are the
// enums' string values, so each string enum is mapped to the union of its values. Everything
// else, including excess-property checks, stays as Grafana publishes it.
import type { Dashboard } from '@grafana/schema';

type AsJson<T> = T extends string
  ? `${T}`
  : T extends readonly (infer Item)[]
    ? AsJson<Item>[]
    : T extends object
      ? { [Key in keyof T]: AsJson<T[Key]> }
      : T;

export type DashboardJson = AsJson<Dashboard>;
