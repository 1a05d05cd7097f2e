/**
 * deploy/rbac.yaml grants each role exactly what its code sends, as derived from the code (src/permissions.ts and
 * the agent's `@Operator` class): a rule the code needs and the file lacks fails here, and so does a verb the file
 * grants that no code sends.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { checkRbac, derivePermissions, type Manifest } from 'opkit';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { agentPermissionSources, aggregatorPermissionSources } from '../../src/permissions.js';
import { REPO_DIR } from '../support/build.js';

const NAMESPACE = 'static-routes';

function rbacYaml(): Manifest[] {
  const text = readFileSync(path.join(REPO_DIR, 'deploy', 'rbac.yaml'), 'utf8');
  return parseAllDocuments(text).map((document) => document.toJS() as Manifest);
}

describe('deploy/rbac.yaml against the rules derived from the code', () => {
  it('the node agent (k8s-staticroute-operator): exactly the derived grants', async () => {
    const derived = derivePermissions(await agentPermissionSources());
    const drift = checkRbac(rbacYaml(), { namespace: NAMESPACE, name: 'k8s-staticroute-operator' }, derived);
    expect(drift, 'missing: needed by the code, not granted; extra: granted, not needed').toEqual({
      missing: [],
      extra: [],
    });
  });

  it('the aggregator (k8s-staticroute-aggregator): exactly the derived grants', () => {
    const derived = derivePermissions(aggregatorPermissionSources());
    const drift = checkRbac(rbacYaml(), { namespace: NAMESPACE, name: 'k8s-staticroute-aggregator' }, derived);
    expect(drift, 'missing: needed by the code, not granted; extra: granted, not needed').toEqual({
      missing: [],
      extra: [],
    });
  });
});
