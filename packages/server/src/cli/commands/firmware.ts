import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { FleetwardError } from '@fleetward/protocol';
import type { Command } from 'commander';
import { readPrivateFile } from '../../config/home.js';
import type { DeviceSoftware, SoftwareSummary } from '../../updates/software-inventory.js';
import { parseTufPublicKey, type TufPublicKey, type TufSigner } from '../../updates/tuf/keys.js';
import { keyFileSigner, newKeyFile, newTokenKey, signMetadata, tokenSigner, type Pkcs11KeyRef } from '../../updates/tuf/offline-signing.js';
import { publishTargets, type Publication } from '../../updates/publish-targets.js';
import type { RepositoryStatus, TufDocument } from '../../updates/tuf/tuf-repository.js';
import type { FirmwareArtifact } from '../../updates/types.js';
import { action, withJson } from '../action.js';
import { optionalString, positiveInteger, strings } from '../arguments.js';
import { withConfigFlags } from '../config-flags.js';
import { readInputFile, writeOutputFile } from '../files.js';
import { table } from '../output.js';
import { perform, query } from '../target.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * `fleetward firmware ...` (rule 4): artifacts, and the TUF repository's offline signing workflow.
 * `keygen` and `sign` need no data folder and no network: run them on the air-gapped machine
 * (or where the PKCS#11 token is); the rest act on the node.
 */
export function firmwareCommand(program: Command): void {
  const firmware = program.command('firmware').description('firmware artifacts and the signed update repository (TUF): upload, offline signing, inventory');

  withJson(firmware.command('keygen'))
    .description('offline: make a signing key for the root or targets role (Ed25519 in FILE.key, 0600; or ECDSA P-256 in a PKCS#11 token) and its public key FILE.pub.json')
    .argument('<file>', 'where to write: FILE.key (private, never overwritten) and FILE.pub.json (public)')
    .option('--pkcs11-module <path>', 'generate in a PKCS#11 token through this module (e.g. /usr/lib/softhsm/libsofthsm2.so)')
    .option('--pkcs11-token <label>', 'the token label')
    .option('--pkcs11-pin-file <file>', 'the user PIN, in a 0600 file')
    .option('--pkcs11-key <label>', 'the label of the new key in the token')
    .action(
      action(async (out, options, file: string) => {
        const ref = await pkcs11Ref(options);
        let publicKey: TufPublicKey;
        let keyid: string;
        if (ref !== null) {
          ({ publicKey, keyid } = await newTokenKey(ref));
        } else {
          const key = newKeyFile();
          await writeOutputFile(`${file}.key`, key.privateKeyPem, 'secret');
          ({ publicKey, keyid } = key);
        }
        await writeOutputFile(`${file}.pub.json`, `${JSON.stringify(publicKey, null, 2)}\n`, 'public');
        out.result({ keyid, publicKeyFile: `${file}.pub.json`, ...(ref === null ? { privateKeyFile: `${file}.key` } : { pkcs11Key: ref.keyLabel }) }, (r) => `Key ${r.keyid}\n  public:  ${r.publicKeyFile}\n  private: ${ref === null ? `${file}.key (keep it offline)` : `PKCS#11 token ${ref.tokenLabel}, label ${ref.keyLabel}`}`);
      }),
    );

  withJson(firmware.command('sign'))
    .description('offline: add signatures to root or targets metadata (a proposal, or one others signed already) with key files or a PKCS#11 key')
    .argument('<file>', 'the metadata JSON; signed in place unless --out is given')
    .option('--key <file>', 'a private key file from `firmware keygen` (repeatable)', collect)
    .option('--pkcs11-module <path>', 'sign with a key in a PKCS#11 token through this module')
    .option('--pkcs11-token <label>', 'the token label')
    .option('--pkcs11-pin-file <file>', 'the user PIN, in a 0600 file')
    .option('--pkcs11-key <label>', 'the label of the key in the token')
    .option('--out <file>', 'write the signed metadata here instead')
    .action(
      action(async (out, options, file: string) => {
        const signers: TufSigner[] = await Promise.all(strings(options.key).map((path) => keyFileSigner(path)));
        const ref = await pkcs11Ref(options);
        if (ref !== null) signers.push(await tokenSigner(ref));
        if (signers.length === 0) throw new FleetwardError('FW_ERR_USAGE', 'name a key: --key FILE or --pkcs11-module/--pkcs11-token/--pkcs11-pin-file/--pkcs11-key');
        const signed = await signMetadata(parseJsonFile(await readInputFile(file), file), signers);
        const target = optionalString(options.out) ?? file;
        await writeOutputFile(target, `${JSON.stringify(signed, null, 2)}\n`, 'public');
        out.result({ file: target, signatures: signed.signatures.length, signedWith: signers.map((s) => s.keyid) }, (r) => `Signed ${r.file} with ${r.signedWith.join(', ')} (${r.signatures} signature(s) now)`);
      }),
    );

  const root = firmware.command('root').description('the repository root: which keys sign which role, and how many must');
  withJson(withConfigFlags(root.command('propose')))
    .description("write the next root for offline signing: the root and targets keys (public files from `firmware keygen`), their thresholds, and this node's online snapshot/timestamp keys")
    .requiredOption('--root-key <file>', 'a root public key file (repeatable)', collect)
    .option('--root-threshold <n>', 'root signatures required', '1')
    .requiredOption('--targets-key <file>', 'a targets public key file (repeatable)', collect)
    .option('--targets-threshold <n>', 'targets signatures required', '1')
    .option('--expires-days <days>', 'root lifetime', '365')
    .requiredOption('--out <file>', 'where to write the unsigned root')
    .action(
      action(async (out, options) => {
        const request = {
          rootKeys: await publicKeys(strings(options.rootKey)),
          rootThreshold: positiveInteger(options.rootThreshold, '--root-threshold', 16) ?? 1,
          targetsKeys: await publicKeys(strings(options.targetsKey)),
          targetsThreshold: positiveInteger(options.targetsThreshold, '--targets-threshold', 16) ?? 1,
          expiresDays: positiveInteger(options.expiresDays, '--expires-days', 3650) ?? 365,
        };
        const proposal = await perform(options, (context) => context.updates.repository.proposeRoot(request), (client) => client.call<TufDocument>('POST', '/api/v1/updates/root/proposal', request));
        await writeOutputFile(String(options.out), `${JSON.stringify(proposal, null, 2)}\n`, 'public');
        const version = (proposal.signed as { version: number }).version;
        out.result({ file: options.out, version }, () => `Wrote root version ${version} to ${String(options.out)}: sign it offline with a threshold of the current and the new root keys (fleetward firmware sign), then import it (fleetward firmware root import)`);
      }),
    );
  withJson(withConfigFlags(root.command('import')))
    .description('accept a signed root: the first one, or a rotation of root or targets keys signed by a threshold of the old and the new root keys')
    .argument('<file>')
    .action(
      action(async (out, options, file: string) => {
        const document = parseJsonFile(await readInputFile(file), file);
        const status = await perform(options, (context, actor) => context.updates.repository.importRoot(document, actor), (client) => client.call<RepositoryStatus>('PUT', '/api/v1/updates/root', document));
        out.result(status, (s) => `Root version ${s.root?.version ?? '?'} in force (root threshold ${s.root?.rootThreshold}, targets threshold ${s.root?.targetsThreshold}); after a targets key rotation, sign and import targets again`);
      }),
    );

  const targets = firmware.command('targets').description('the signed list of artifacts devices may install');
  withJson(withConfigFlags(targets.command('propose')))
    .description('write the next targets metadata, listing every uploaded artifact, for offline signing')
    .option('--expires-days <days>', 'targets lifetime', '90')
    .requiredOption('--out <file>', 'where to write the unsigned targets')
    .action(
      action(async (out, options) => {
        const expiresDays = positiveInteger(options.expiresDays, '--expires-days', 3650) ?? 90;
        const proposal = await perform(options, (context) => context.updates.repository.proposeTargets(expiresDays), (client) => client.call<TufDocument>('POST', '/api/v1/updates/targets/proposal', { expiresDays }));
        await writeOutputFile(String(options.out), `${JSON.stringify(proposal, null, 2)}\n`, 'public');
        const signed = proposal.signed as { version: number; targets: object };
        out.result({ file: options.out, version: signed.version, targets: Object.keys(signed.targets) }, (r) => `Wrote targets version ${r.version} (${r.targets.length} artifact(s)) to ${String(options.out)}: sign it offline with the targets key(s), then publish it (fleetward firmware targets import)`);
      }),
    );
  withJson(withConfigFlags(targets.command('import')))
    .description('publish signed targets metadata: refused below the threshold, with an unknown key, as a rollback, or when a target does not match its artifact')
    .argument('<file>')
    .action(
      action(async (out, options, file: string) => {
        const document = parseJsonFile(await readInputFile(file), file);
        const publication = await perform(options, (context, actor) => publishTargets(context.updates, document, actor), (client) => client.call<Publication>('PUT', '/api/v1/updates/targets', document));
        out.result(publication, ({ status: s, securityDeployments }) =>
          [
            `Targets version ${s.targets?.version ?? '?'} published (${s.targets?.count ?? 0} artifact(s)); snapshot ${s.snapshot?.version}, timestamp ${s.timestamp?.version} (expires ${s.timestamp?.expires})`,
            ...securityDeployments.map((d) => `Security release ${d.target}: ${d.deployment === null ? 'no opted-in group holds devices' : `deployment ${d.deployment} started`}${d.blocked > 0 ? `; ${d.blocked} device(s) cannot receive it (alerted)` : ''}`),
          ].join('\n'),
        );
      }),
    );

  withJson(withConfigFlags(firmware.command('add')))
    .description('upload a firmware artifact (stored content-addressed; deployable once signed into targets)')
    .argument('<file>')
    .requiredOption('--version <semver>', 'its semantic version, like 1.4.2')
    .requiredOption('--security-version <n>', 'its anti-rollback counter: devices never install below the highest they ran')
    .requiredOption('--hardware <type>', 'a thing type it is built for (repeatable)', collect)
    .option('--name <name>', "the product name (default: the file's name without extension)")
    .option('--notes <text>', 'release notes')
    .option('--sbom <file>', 'its SBOM (CycloneDX JSON)')
    .option('--security', 'a security release: deploys automatically to the groups that opt in')
    .action(
      action(async (out, options, file: string) => {
        const size = (await stat(file).catch(() => null))?.size;
        if (size === undefined) throw new FleetwardError('FW_ERR_USAGE', `cannot read ${file}`);
        const securityVersion = Number(options.securityVersion);
        if (!Number.isInteger(securityVersion) || securityVersion < 0) throw new FleetwardError('FW_ERR_USAGE', '--security-version must be a whole number from 0');
        const sbom = options.sbom === undefined ? undefined : await readInputFile(optionalString(options.sbom) ?? '', 'the SBOM');
        const request = {
          name: optionalString(options.name) ?? basename(file, extname(file)).toLowerCase(),
          version: String(options.version),
          securityVersion,
          hardware: strings(options.hardware),
          ...(optionalString(options.notes) !== undefined && { releaseNotes: optionalString(options.notes) as string }),
          ...(options.security === true && { securityRelease: true }),
        };
        const artifact = await perform(
          options,
          (context, actor) => context.updates.artifacts.add(createReadStream(file), { ...request, ...(sbom !== undefined && { sbom }) }, actor),
          (client) =>
            client.upload<FirmwareArtifact>(
              `/api/v1/firmware${query({ ...request, hardware: request.hardware.join(',') })}`,
              createReadStream(file),
              sbom === undefined ? {} : { 'x-fleetward-sbom': Buffer.from(sbom).toString('base64') },
            ),
        );
        out.result(artifact, (a) => `Added ${a.target} (${a.size} bytes, sha256 ${a.sha256}, security version ${a.securityVersion}, for ${a.hardware.join(', ')}); sign it into targets to deploy it`);
      }),
    );

  withJson(withConfigFlags(firmware.command('list')))
    .description('uploaded artifacts, and whether the targets in force sign them')
    .action(
      action(async (out, options) => {
        const list = await perform(options, (context) => context.updates.artifacts.list(), async (client) => (await client.call<{ artifacts: FirmwareArtifact[] }>('GET', '/api/v1/firmware')).artifacts);
        out.result({ artifacts: list }, (r) =>
          table(
            ['target', 'version', 'security', 'hardware', 'size', 'signed', 'sbom'],
            r.artifacts.map((a) => [a.target, a.version, `${a.securityVersion}${a.securityRelease ? ' (security release)' : ''}`, a.hardware.join(','), String(a.size), a.signed ? 'yes' : 'no', a.hasSbom ? 'yes' : 'no']),
          ),
        );
      }),
    );

  withJson(withConfigFlags(firmware.command('status')))
    .description('the update repository: root and targets versions, thresholds, keys and expiries')
    .action(
      action(async (out, options) => {
        const status = await perform(options, (context) => context.updates.repository.status(), (client) => client.call<RepositoryStatus>('GET', '/api/v1/updates/repository'));
        out.result(status, describeStatus);
      }),
    );

  withJson(withConfigFlags(firmware.command('inventory')))
    .description('the software devices report running: the fleet summary by version, and devices (--unauthorized: those running an image that is not a signed target of their type)')
    .option('--version <version>', 'only devices on this firmware version')
    .option('--unauthorized', 'only devices running unauthorized firmware')
    .action(
      action(async (out, options) => {
        const filter = { ...(optionalString(options.version) !== undefined && { version: optionalString(options.version) as string }), ...(options.unauthorized === true && { unauthorized: true }) };
        const result = await perform(
          options,
          async (context) => ({ summary: await context.updates.inventory.summary(), devices: await context.updates.inventory.list(filter) }),
          (client) => client.call<{ summary: SoftwareSummary; devices: DeviceSoftware[] }>('GET', `/api/v1/updates/inventory${query(filter)}`),
        );
        out.result(result, (r) =>
          [
            `${r.summary.devices} device(s) reporting, ${r.summary.unauthorized} running unauthorized firmware`,
            table(['version', 'security', 'devices'], r.summary.byVersion.map((v) => [v.firmwareVersion, v.securityVersion === null ? '-' : String(v.securityVersion), String(v.devices)])),
            '',
            table(['thing', 'version', 'security', 'image', 'agent', 'authorized', 'reported'], r.devices.map((d) => [d.thing, d.firmwareVersion, d.securityVersion === null ? '-' : String(d.securityVersion), d.imageHash?.slice(0, 19) ?? '-', d.agentVersion, d.authorized ? 'yes' : 'NO', d.reportedAt])),
          ].join('\n'),
        );
      }),
    );
}

function describeStatus(s: RepositoryStatus): string {
  if (s.root === null) return 'No root yet: fleetward firmware keygen, root propose, sign, root import (docs/rule-04-updates.md)';
  return [
    `root       version ${s.root.version}, expires ${s.root.expires}; root keys ${s.root.rootKeys.length} (threshold ${s.root.rootThreshold}), targets keys ${s.root.targetsKeys.length} (threshold ${s.root.targetsThreshold})`,
    `targets    ${s.targets === null ? 'none signed yet' : `version ${s.targets.version}, ${s.targets.count} artifact(s), expires ${s.targets.expires}`}`,
    `snapshot   ${s.snapshot === null ? '-' : `version ${s.snapshot.version}, expires ${s.snapshot.expires}`}`,
    `timestamp  ${s.timestamp === null ? '-' : `version ${s.timestamp.version}, expires ${s.timestamp.expires}`}`,
  ].join('\n');
}

async function publicKeys(files: readonly string[]): Promise<TufPublicKey[]> {
  return Promise.all(files.map(async (file) => parseTufPublicKey(parseJsonFile(await readInputFile(file), file), file)));
}

function parseJsonFile(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new FleetwardError('FW_ERR_VALIDATION', `${file} is not JSON`);
  }
}

async function pkcs11Ref(options: Record<string, unknown>): Promise<Pkcs11KeyRef | null> {
  const given = ['pkcs11Module', 'pkcs11Token', 'pkcs11PinFile', 'pkcs11Key'].filter((k) => options[k] !== undefined);
  if (given.length === 0) return null;
  if (given.length < 4) throw new FleetwardError('FW_ERR_USAGE', 'a PKCS#11 key needs --pkcs11-module, --pkcs11-token, --pkcs11-pin-file and --pkcs11-key');
  const pin = (await readPrivateFile(String(options.pkcs11PinFile), 'PKCS#11 PIN file')).toString('utf8').trim();
  return { module: String(options.pkcs11Module), tokenLabel: String(options.pkcs11Token), pin, keyLabel: String(options.pkcs11Key) };
}
