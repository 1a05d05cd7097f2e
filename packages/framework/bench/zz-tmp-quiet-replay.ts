// Temporary measurement script (not to be committed): replay with and without the status write.
import { createWidgets, startBenchCluster } from './lib/cluster.js';
import { replayOperatorWrites } from './lib/replay.js';
const cluster = await startBenchCluster();
try {
  for (const kind of ['floor', 'status', 'quiet']) await cluster.installCrd(`${kind}1widgets`);
  const floor = await createWidgets(cluster.client, 'floor1widgets', 1000, 8);
  const quiet = await replayOperatorWrites(cluster.client, 'quiet1widgets', { objects: 1000, parallelCreates: 8, concurrency: 4, statusWrite: false });
  const withStatus = await replayOperatorWrites(cluster.client, 'status1widgets', { objects: 1000, parallelCreates: 8, concurrency: 4 });
  console.log(JSON.stringify({ floorMs: Math.round(floor), replayWithStatusMs: Math.round(withStatus), replayNoStatusMs: Math.round(quiet) }));
} finally {
  await cluster.stop();
}
