/**
 * HMAC-SHA256 challenge-response for the parameter server. The shared token never travels: each
 * side proves it knows it by MACing both fresh nonces under a side-specific label, so a recorded
 * proof is useless for another connection and a client proof cannot be replayed as a server proof.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { PsError } from './errors.js';

export const NONCE_BYTES = 32;
export const MAC_BYTES = 32;
const CLIENT_LABEL = 'cirrus-ps auth v1 client';
const SERVER_LABEL = 'cirrus-ps auth v1 server';

export function freshNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

function proof(token: string, label: string, serverNonce: Uint8Array, clientNonce: Uint8Array): Uint8Array {
  // Fixed-size nonces after a fixed label: the concatenation is unambiguous.
  const h = createHmac('sha256', token);
  h.update(label);
  h.update(serverNonce);
  h.update(clientNonce);
  return new Uint8Array(h.digest());
}

export function clientProof(token: string, serverNonce: Uint8Array, clientNonce: Uint8Array): Uint8Array {
  return proof(token, CLIENT_LABEL, serverNonce, clientNonce);
}

export function serverProof(token: string, serverNonce: Uint8Array, clientNonce: Uint8Array): Uint8Array {
  return proof(token, SERVER_LABEL, serverNonce, clientNonce);
}

/** Constant-time comparison; a length mismatch is simply false. */
export function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

/** HELLO reply: u8 authRequired (0/1), then the server's nonce. */
export function encodeHelloReply(authRequired: boolean, nonce: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + NONCE_BYTES);
  out[0] = authRequired ? 1 : 0;
  out.set(nonce, 1);
  return out;
}

export function decodeHelloReply(payload: Uint8Array): { authRequired: boolean; nonce: Uint8Array } {
  if (payload.byteLength !== 1 + NONCE_BYTES || payload[0]! > 1) {
    throw new PsError('PS_PROTOCOL', `HELLO reply must be ${1 + NONCE_BYTES} bytes (flag + nonce), got ${payload.byteLength}`);
  }
  return { authRequired: payload[0] === 1, nonce: payload.slice(1) };
}

/** AUTH request: client nonce, then the client's proof. */
export function encodeAuth(clientNonce: Uint8Array, mac: Uint8Array): Uint8Array {
  const out = new Uint8Array(NONCE_BYTES + MAC_BYTES);
  out.set(clientNonce, 0);
  out.set(mac, NONCE_BYTES);
  return out;
}

/** Hosts a tokenless server may bind: only this machine can reach them. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}
