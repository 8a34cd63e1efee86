/** Server side of the HELLO/AUTH handshake (see auth.ts for the proofs). */
import { MAC_BYTES, NONCE_BYTES, clientProof, encodeHelloReply, freshNonce, sameMac, serverProof } from './auth.js';

export interface AuthState {
  authenticated: boolean;
  /** The nonce of the latest HELLO; consumed by the next AUTH, right or wrong, so it is never reused. */
  nonce: Uint8Array | undefined;
}

export function helloReply(state: AuthState, token: string | undefined): Uint8Array {
  state.nonce = freshNonce();
  return encodeHelloReply(token !== undefined, state.nonce);
}

type AuthResult = { ok: true; proof: Uint8Array } | { ok: false; message: string };

/** Checks an AUTH payload (client nonce + client proof); on success returns the server's proof. */
export function authenticate(state: AuthState, token: string | undefined, payload: Uint8Array): AuthResult {
  const serverNonce = state.nonce;
  state.nonce = undefined;
  if (token === undefined) return { ok: false, message: 'this server has no token, so there is nothing to authenticate' };
  if (!serverNonce) return { ok: false, message: 'AUTH must follow a HELLO on the same connection' };
  if (payload.byteLength !== NONCE_BYTES + MAC_BYTES) {
    return { ok: false, message: `payload must be ${NONCE_BYTES + MAC_BYTES} bytes (client nonce + HMAC), got ${payload.byteLength}` };
  }
  const clientNonce = payload.subarray(0, NONCE_BYTES);
  const mac = payload.subarray(NONCE_BYTES);
  if (!sameMac(mac, clientProof(token, serverNonce, clientNonce))) return { ok: false, message: 'authentication failed: wrong token' };
  state.authenticated = true;
  return { ok: true, proof: serverProof(token, serverNonce, clientNonce) };
}
