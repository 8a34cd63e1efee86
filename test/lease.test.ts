/**
 * The worker's lease against a supervisor played by the test (owner records in a real in-memory
 * object store): grants, duplicates, and the in-place rollback that moves a copy to a new generation.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { heartbeatKey, ownerKey, packRecord, readRecord, claimKey, type HeartbeatRecord } from '../channels/control.js';
import { MemoryObjectStore } from '../channels/object-stores/index.js';
import { Lease } from '../worker/lease.js';

const id = { jobId: 'job-lease', rank: 1, generation: 0, attempt: 0 };
const spec = { leaseMs: 10_000, heartbeatMs: 2_000, claimTimeoutMs: 5_000 };

/** Grants the first claim of (generation 0, attempt 0) as the supervisor would. */
async function grantFirstClaim(store: MemoryObjectStore): Promise<string> {
  for (let i = 0; i < 500; i++) {
    const claim = readRecord<{ nonce: string }>(await store.get(claimKey(id.jobId, id.rank, 0, 0)));
    if (claim) {
      await store.put(ownerKey(id.jobId, id.rank), packRecord({ generation: 0, attempt: 0, grant: claim.nonce }));
      return claim.nonce;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no claim within 5 s');
}

test('an in-place rollback moves the granted copy to the new generation: rollback() resolves, the old loop may not write, the new one may', async () => {
  const store = new MemoryObjectStore();
  // The lease's timers do not hold the process open (a worker exits when its work is done): this does.
  const alive = setInterval(() => undefined, 1_000);
  await store.put(ownerKey(id.jobId, id.rank), packRecord({ generation: 0, attempt: 0 }));
  const [lease, nonce] = await Promise.all([Lease.acquire(store, id, spec), grantFirstClaim(store)]);
  try {
    assert.equal(lease.nonce, nonce);
    await lease.guard(0);
    const directive = lease.rollback();
    lease.watchRollbacks(20);
    await store.put(ownerKey(id.jobId, id.rank), packRecord({ generation: 3, attempt: 0, grant: nonce, inPlace: true, resumeFrom: 42 }));
    assert.deepEqual(await directive, { generation: 3, attempt: 0, resumeFrom: 42 });
    assert.equal(lease.generation, 3);
    await assert.rejects(lease.guard(0), { code: 'TRAIN_ROLLED_BACK', message: 'rank 1: generation 3 attempt 0 of rank 1 of job job-lease: the loop of generation 0 was rolled back and may not write' });
    await lease.guard(3);
    // Heartbeats go on under the new identity, with the abandoned generation's checkpoints dropped.
    await lease.reportCheckpoint(7);
    const hb = readRecord<HeartbeatRecord>(await store.get(heartbeatKey(id.jobId, id.rank)))!;
    assert.deepEqual([hb.generation, hb.attempt, hb.nonce, hb.checkpoints], [3, 0, nonce, [7]]);
    // A directive for another copy's grant is not this copy's: it has lost the rank.
    await store.put(ownerKey(id.jobId, id.rank), packRecord({ generation: 4, attempt: 0, grant: 'someone-else', inPlace: true }));
    await lease.reportCheckpoint(8); // a renewal: it reads the owner record
    await assert.rejects(lease.lost, { code: 'TRAIN_DUPLICATE', message: /^rank 1: generation 3 attempt 0 of rank 1 of job job-lease was superseded by generation 4 attempt 0; this copy exits without writing$/ });
  } finally {
    lease.stop();
    clearInterval(alive);
  }
});
