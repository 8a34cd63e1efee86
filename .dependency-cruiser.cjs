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
    {
      name: 'one-door',
      severity: 'error',
      comment:
        "Other rooms enter a room through its door (index.ts) only. Exceptions: the worker event contract (worker/event.ts) that client and worker share, and sub-room doors (a folder's index.ts inside a room) where the room's own door would load more than the importer may. Named exception: the worker's entry (worker/event.ts, worker/handler.ts) takes channels/spec.ts and channels/messages.ts directly, because loading channels/index.ts there adds ~50 ms of CPU to every cold start (measured).",
      from: { path: '^(paramserver|channels|algorithms|worker|client|hpo|bench|examples)/', pathNot: '^worker/(event|handler)\\.ts$' },
      to: {
        path: '^(paramserver|channels|algorithms|worker|client|hpo)/',
        pathNot: ['^$1/', '^[^/]+/index\\.ts$', '^[^/]+/.+/index\\.ts$', '^worker/event\\.ts$'],
      },
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
