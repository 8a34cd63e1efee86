/** Source of a process that keeps both cores busy (two spinning threads) until killed or orphaned. */
export function burnerSource(): string {
  return "const { Worker } = require('node:worker_threads'); for (let i = 0; i < 2; i++) new Worker('for(;;){}', { eval: true }); setInterval(() => { if (process.ppid === 1) process.exit(0); }, 500);";
}
