/** The `alertname` each mirror alarm is delivered as (server/alerting.ts), shared with the UI. */
export const alarmAlertNames = {
  "without-redundancy": "MirrorWithoutRedundancy",
  stalled: "MirrorResyncStalled",
  "eta-slipping": "MirrorEtaSlipping",
} as const;
