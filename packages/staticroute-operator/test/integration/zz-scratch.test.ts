import { it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { startControlPlane } from '@opkit/testbed';
it('scratch control plane', async () => {
  const cp = await startControlPlane();
  writeFileSync('/tmp/srx/kubeconfig-path', cp.kubeconfigPath);
  await new Promise((resolve) => setTimeout(resolve, 3_000_000));
  await cp.stop();
}, 4_000_000);
