declare module "*.sql" {
  const text: string;
  export default text;
}

declare module "parse-prometheus-text-format" {
  /** Parses a Prometheus text exposition; throws on a line it cannot read. */
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
