/**
 * The house's import rules (issue 14), checked by `npm test` on the TypeScript sources.
 * Room order, lowest first: paramserver < channels < algorithms < worker < client < hpo < bench.
 * A violation fails with the rule's name. Named exceptions below are today's known ones.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'No circular imports.',
      from: {},
      to: { circular: true },
    },
    { name: 'no-import-test', severity: 'error', comment: 'Only test/ imports test/.', from: { path: '^(paramserver|channels|algorithms|worker|client|hpo|bench|examples)/' }, to: { path: '^test/' } },
    {
      name: 'no-import-bench',
      severity: 'error',
      comment: 'Only bench/ and test/ import bench/ (the table printer lives in client/cli/table.ts, for the CLI and the benches alike).',
      from: { path: '^(paramserver|channels|algorithms|worker|client|hpo|examples)/' },
      to: { path: '^bench/' },
    },
    { name: 'room-paramserver', severity: 'error', comment: 'paramserver imports no other room.', from: { path: '^paramserver/' }, to: { path: '^(channels|algorithms|worker|client|hpo|bench)/' } },
    { name: 'room-channels', severity: 'error', comment: 'channels may import only paramserver.', from: { path: '^channels/' }, to: { path: '^(algorithms|worker|client|hpo|bench)/' } },
    { name: 'room-algorithms', severity: 'error', comment: 'algorithms may import channels and paramserver.', from: { path: '^algorithms/' }, to: { path: '^(worker|client|hpo|bench)/' } },
    { name: 'room-worker', severity: 'error', comment: 'worker may import algorithms, channels, paramserver.', from: { path: '^worker/' }, to: { path: '^(client|hpo|bench)/' } },
    {
      name: 'room-client-worker',
      severity: 'error',
      comment: "client may import worker only for the event contract (worker/event.ts), as client/launchers/types.ts and client/preprocess/distributed.ts do today.",
      from: { path: '^client/' },
      to: { path: '^worker/', pathNot: '^worker/event\\.ts$' },
    },
    { name: 'room-client', severity: 'error', comment: 'client may not import hpo.', from: { path: '^client/' }, to: { path: '^hpo/' } },
    { name: 'room-hpo', severity: 'error', comment: 'hpo may import client and below.', from: { path: '^hpo/' }, to: { path: '^bench/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^dist/|^node_modules/|\\.d\\.ts$)' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
