/** Kubeconfig files that kubectl and @kubernetes/client-node both read. */
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

/** What a token kubeconfig holds. */
export interface TokenKubeconfig {
  server: string;
  caPem: string;
  token: string;
  /** Name of the cluster, user and context entries. Defaults to `testbed`. */
  name?: string;
}

/** Renders a kubeconfig with one cluster (CA embedded), one token user and a current context. */
export function renderKubeconfig({ server, caPem, token, name = 'testbed' }: TokenKubeconfig): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name, user: { token } }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: 'default' } }],
    'current-context': name,
    preferences: {},
  });
}

/** Writes a kubeconfig (mode 0600: it holds a credential) and returns its path. */
export async function writeKubeconfigFile(filePath: string, config: TokenKubeconfig): Promise<string> {
  await writeFile(filePath, renderKubeconfig(config), { mode: 0o600 });
  return filePath;
}
