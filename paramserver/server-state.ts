/**
 * The server state a snapshot holds besides the models: stored values (the jobs' control keys,
 * collective rounds) and worker registrations, as one msgpack part.
 */
import { Packr } from 'msgpackr';
import { PsModelError } from './model.js';

const packr = new Packr({ moreTypes: true, useRecords: false, mapsAsObjects: true });

interface ServerState {
  values: Array<[string, Uint8Array]>;
  registrations: Array<[string, string, boolean]>;
}

export function encodeServerState(values: ReadonlyMap<string, Uint8Array>, registrations: Array<[string, string, boolean]>): Uint8Array {
  // Copies: a stored value is a view into its frame's buffer, which must not be packed whole.
  return packr.pack({ values: [...values].map(([k, v]) => [k, Uint8Array.from(v)]), registrations });
}

export function decodeServerState(bytes: Uint8Array): ServerState {
  const s = packr.unpack(bytes) as Partial<ServerState>;
  const ok = Array.isArray(s?.values) && Array.isArray(s?.registrations) && s.values.every((e) => typeof e[0] === 'string' && e[1] instanceof Uint8Array);
  if (!ok) throw new PsModelError('PS_SNAPSHOT', 'snapshot state part is not {values: [key, bytes][], registrations}');
  return s as ServerState;
}
