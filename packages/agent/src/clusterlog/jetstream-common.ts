import { subjectToken } from "./operation-codec.ts";

// What the JetStream bus's parts (jetstream-bus.ts and the jetstream-*.ts it composes)
// share: the error and logger types, the names of a cluster's stream and buckets.
// jetstream-bus.ts re-exports the public ones.

export interface BusLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export class BusError extends Error {}

export const silentLogger: BusLogger = { info() {}, warn() {}, error() {} };

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Names a cluster's stream, subjects and buckets. */
export function jetStreamNames(cluster: string) {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cluster)) {
    throw new BusError(`cluster name ${JSON.stringify(cluster)}: use 1-64 of [A-Za-z0-9_-]`);
  }
  const prefix = `mirrorplane.${cluster}`;
  return {
    stream: `MIRRORPLANE_${cluster}`,
    subjects: `${prefix}.>`,
    logSubject: (uuid: string) => `${prefix}.log.${subjectToken(uuid)}`,
    ioSubject: `${prefix}.io`,
    memberSubject: `${prefix}.member`,
    heartbeatBucket: `mirrorplane-${cluster}-heartbeat`,
    snapshotBucket: `mirrorplane-${cluster}-snapshot`,
  };
}

/** Refused messages and snapshots (forged, unsigned, unknown signer, replayed). */
export interface RefusalStats {
  refused: number;
  refusedSnapshots: number;
}
