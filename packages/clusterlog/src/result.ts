// A typed result instead of exceptions: malformed input from the kernel, a socket or a
// disk must never throw out of the core (a crashed server leaves the kernel retrying
// forever, spec §1.4).

export interface CoreError<C extends string = string> {
  readonly code: C;
  readonly message: string;
}

export type Result<T, C extends string = string> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: CoreError<C> };

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

export function fail<C extends string>(
  code: C,
  message: string,
): { readonly ok: false; readonly error: CoreError<C> } {
  return { ok: false, error: { code, message } };
}
