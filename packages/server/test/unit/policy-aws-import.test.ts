import { FleetwardError } from '@fleetward/protocol';
import { describe, expect, it } from 'vitest';
import { compilePolicies, importAwsIotPolicy, serializePolicy, type AwsImportOptions, type PolicyDocument } from '../../src/access/policy/index.js';

const ARN = 'arn:aws:iot:us-east-1:123456789012';
const aws = (statements: unknown[]) => ({ Version: '2012-10-17', Statement: statements });
const connectAsThing = { Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${ARN}:client/\${iot:Connection.Thing.ThingName}`] };

function refusal(document: unknown, options?: AwsImportOptions): FleetwardError {
  try {
    importAwsIotPolicy(document, options);
  } catch (error) {
    if (error instanceof FleetwardError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

const statementsOf = (document: PolicyDocument) => document.statements.map((s) => ({ ...s }));

describe('AWS IoT policy import', () => {
  it('ok/ the AWS thing-policy-variable example: connect as the thing name, publish to its topic', () => {
    const imported = importAwsIotPolicy(
      aws([
        { Effect: 'Allow', Action: ['iot:Publish'], Resource: [`${ARN}:topic/\${iot:Connection.Thing.ThingName}`] },
        { Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${ARN}:client/\${iot:Connection.Thing.ThingName}`] },
      ]),
    );
    expect(statementsOf(imported)).toEqual([
      { sid: 'aws-0', effect: 'allow', actions: ['mqtt:publish'], resources: ['topic/${thing.name}'] },
      { sid: 'aws-1', effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
    ]);
  });

  it('ok/ a trailing /* becomes +/# for topics (not #, which would add the parent) and # for topic filters', () => {
    const imported = importAwsIotPolicy(
      aws([
        connectAsThing,
        { Sid: 'PubRecv', Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: [`${ARN}:topic/things/\${iot:Connection.Thing.ThingName}/*`] },
        { Sid: 'Sub', Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/things/\${iot:Connection.Thing.ThingName}/*` },
      ]),
    );
    expect(imported.statements.slice(1).map((s) => [s.sid, s.actions, s.resources])).toEqual([
      ['PubRecv', ['mqtt:publish', 'mqtt:receive'], ['topic/things/${thing.name}/+/#']],
      ['Sub', ['mqtt:subscribe'], ['topic/things/${thing.name}/#']],
    ]);
    const compiled = compilePolicies([{ name: 'imported', document: imported }], { thing: { name: 'dev' } });
    expect(compiled.allows('mqtt:publish', 'things/dev/a/b')).toBe(true);
    expect(compiled.allows('mqtt:publish', 'things/dev/')).toBe(true);
    // AWS `things/dev/*` does not match `things/dev` itself.
    expect(compiled.allows('mqtt:publish', 'things/dev')).toBe(false);
    expect(compiled.allows('mqtt:subscribe', 'things/dev/#')).toBe(true);
    expect(compiled.allows('mqtt:subscribe', 'things/other/#')).toBe(false);
  });

  it('ok/ a statement mixing resource kinds is split so each action keeps only the resources AWS matches it against', () => {
    const imported = importAwsIotPolicy(
      aws([{ Sid: 'Both', Effect: 'Allow', Action: ['iot:Subscribe', 'iot:Receive'], Resource: [`${ARN}:topicfilter/alerts/#`, `${ARN}:topic/alerts/fire`] }]),
    );
    expect(statementsOf(imported)).toEqual([
      { sid: 'Both-subscribe', effect: 'allow', actions: ['mqtt:subscribe'], resources: ['topic/alerts/#'] },
      { sid: 'Both-topics', effect: 'allow', actions: ['mqtt:receive'], resources: ['topic/alerts/fire'] },
    ]);
  });

  it('ok/ ${iot:ClientId} becomes ${thing.name} when the document binds the client id to the thing name', () => {
    const imported = importAwsIotPolicy(aws([connectAsThing, { Effect: 'Allow', Action: ['iot:Publish'], Resource: [`${ARN}:topic/foo/bar/\${iot:ClientId}`] }]));
    expect(imported.statements[1]?.resources).toEqual(['topic/foo/bar/${thing.name}']);
  });

  it('ok/ the AWS "deny publishing to subtopics" example keeps deny-wins', () => {
    const imported = importAwsIotPolicy(
      aws([
        { Effect: 'Allow', Action: ['iot:Publish'], Resource: [`${ARN}:topic/department/*`] },
        { Effect: 'Deny', Action: ['iot:Publish'], Resource: [`${ARN}:topic/department/admin/*`] },
      ]),
    );
    const compiled = compilePolicies([{ name: 'p', document: imported }], {});
    expect(compiled.allows('mqtt:publish', 'department/sales/report')).toBe(true);
    expect(compiled.decide('mqtt:publish', 'department/admin/keys').reason).toBe('denied');
    expect(compiled.allows('mqtt:publish', 'department/admin')).toBe(true);
  });

  it('ok/ attributes, thing types, certificate variables, retained publish, conditions and a single statement object', () => {
    const imported = importAwsIotPolicy(
      {
        Version: '2012-10-17',
        Id: 'ignored',
        Statement: {
          Sid: 'Site',
          Effect: 'Allow',
          Action: ['iot:publish', 'IOT:RetainPublish'],
          Resource: [
            `${ARN}:topic/sites/\${iot:Connection.Thing.Attributes[site]}/\${iot:Connection.Thing.ThingName}`,
            `${ARN}:topic/types/\${iot:Connection.Thing.ThingTypeName}/\${iot:Connection.Thing.ThingName}/\${iot:Certificate.Subject.CommonName}/\${iot:Certificate.SerialNumber}`,
          ],
          Condition: {
            IpAddress: { 'aws:SourceIp': ['192.0.2.0/24', '2001:db8::1'] },
            StringEquals: { 'iot:Connection.Thing.Attributes[tier]': 'gold' },
            Bool: { 'iot:Connection.Thing.IsAttached': 'true' },
          },
        },
      },
      { region: 'us-east-1', account: '123456789012', description: 'from AWS' },
    );
    expect(JSON.parse(serializePolicy(imported))).toEqual({
      version: '2026-11',
      description: 'from AWS',
      statements: [
        {
          sid: 'Site',
          effect: 'allow',
          actions: ['mqtt:publish', 'mqtt:retain'],
          resources: ['topic/sites/${thing.attr.site}/${thing.name}', 'topic/types/${thing.type}/${thing.name}/${cert.cn}/${cert.serial}'],
          conditions: { sourceAddress: ['192.0.2.0/24', '2001:db8::1/128'], thingAttributes: { tier: 'gold' } },
        },
      ],
    });
  });

  it('ok/ connect on Resource *, and iot:* only when the caller asks to expand it', () => {
    expect(importAwsIotPolicy(aws([{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }])).statements[0]?.resources).toEqual(['client/*']);
    const expanded = importAwsIotPolicy(aws([{ Effect: 'Allow', Action: 'iot:*', Resource: [`${ARN}:client/\${iot:Connection.Thing.ThingName}`, `${ARN}:topic/t/\${iot:Connection.Thing.ThingName}`] }]), { expandWildcardActions: true });
    expect(expanded.statements.map((s) => [s.actions, s.resources])).toEqual([
      [['mqtt:connect'], ['client/${thing.name}']],
      [['mqtt:publish', 'mqtt:receive', 'mqtt:retain'], ['topic/t/${thing.name}']],
    ]);
  });

  it.each([
    ['an old Version', { Version: '2008-10-17', Statement: [connectAsThing] }, '/Version'],
    ['no Statement', { Version: '2012-10-17' }, '/Statement'],
    ['NotAction', aws([{ Effect: 'Allow', NotAction: 'iot:Connect', Resource: '*' }]), '/Statement/0/NotAction'],
    ['NotResource', aws([{ Effect: 'Allow', Action: 'iot:Publish', NotResource: `${ARN}:topic/a` }]), '/Statement/0/NotResource'],
    ['Principal', aws([{ ...connectAsThing, Principal: '*' }]), '/Statement/0/Principal'],
    ['iot:* by default', aws([{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }]), '/Statement/0/Action'],
    ['an action pattern', aws([{ Effect: 'Allow', Action: ['iot:Pub*'], Resource: `${ARN}:topic/a` }]), '/Statement/0/Action/0'],
    ['a non-MQTT action', aws([{ Effect: 'Allow', Action: ['iot:Publish', 'iot:UpdateThingShadow'], Resource: `${ARN}:topic/a` }]), '/Statement/0/Action/1'],
    ['Resource * for publish', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: '*' }]), '/Statement/0/Resource'],
    ['topic/*', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/*` }]), '/Statement/0/Resource'],
    ['topicfilter/*', aws([{ Effect: 'Deny', Action: 'iot:Subscribe', Resource: [`${ARN}:topicfilter/*`] }]), '/Statement/0/Resource/0'],
    ['* inside a level', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/sensor-*/data` }]), '/Statement/0/Resource'],
    ['* between levels', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/a/*/b` }]), '/Statement/0/Resource'],
    ['?', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/a/?` }]), '/Statement/0/Resource'],
    ['a literal + in a topic', aws([{ Effect: 'Allow', Action: 'iot:Receive', Resource: `${ARN}:topic/a/+` }]), '/Statement/0/Resource'],
    ['a literal # in a topic', aws([{ Effect: 'Allow', Action: 'iot:Receive', Resource: `${ARN}:topic/a/#` }]), '/Statement/0/Resource'],
    ['an invalid filter', aws([{ Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/a/#/b` }]), '/Statement/0/Resource'],
    ['a client id pattern', aws([{ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/sensor-*` }]), '/Statement/0/Resource'],
    ['client/${iot:ClientId}', aws([{ Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:ClientId}` }]), '/Statement/0/Resource'],
    ['${iot:ClientId} without a binding connect', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/\${iot:ClientId}` }]), '/Statement/0/Resource'],
    ['${iot:ClientId} when another client id may connect', aws([connectAsThing, { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/admin` }, { Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/\${iot:ClientId}` }]), '/Statement/2/Resource'],
    ['an unknown variable', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/\${aws:username}` }]), '/Statement/0/Resource'],
    ['an invalid attribute name', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/\${iot:Connection.Thing.Attributes[_x]}` }]), '/Statement/0/Resource'],
    ['another resource type', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:thing/dev` }]), '/Statement/0/Resource'],
    ['not an ARN', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: 'topic/a' }]), '/Statement/0/Resource'],
    ['two accounts', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: [`${ARN}:topic/a`, 'arn:aws:iot:us-east-1:999999999999:topic/b'] }]), '/Statement/0/Resource/1'],
    ['a region pattern', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:us-*:123456789012:topic/a' }]), '/Statement/0/Resource'],
    ['StringLike', aws([{ ...connectAsThing, Condition: { StringLike: { 'iot:Connection.Thing.Attributes[site]': 'b*' } } }]), '/Statement/0/Condition/StringLike/iot:Connection.Thing.Attributes[site]'],
    ['several attribute values', aws([{ ...connectAsThing, Condition: { StringEquals: { 'iot:Connection.Thing.Attributes[site]': ['a', 'b'] } } }]), '/Statement/0/Condition/StringEquals/iot:Connection.Thing.Attributes[site]'],
    ['IsAttached on a resource without the thing name', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/public`, Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } } }]), '/Statement/0/Condition'],
    ['IsAttached false', aws([{ ...connectAsThing, Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'false' } } }]), '/Statement/0/Condition/Bool/iot:Connection.Thing.IsAttached'],
    ['a source address with host bits', aws([{ ...connectAsThing, Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.1/8' } } }]), '/Statement/0/Condition/IpAddress/aws:SourceIp'],
    ['nothing MQTT left', aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topicfilter/a` }]), '/Statement'],
  ])('fail/ refuses %s, naming where', (_name, document, path) => {
    const error = refusal(document);
    expect(error.code).toBe('FW_ERR_VALIDATION');
    expect(error.details).toMatchObject({ path, reason: 'aws-untranslatable' });
    expect(error.message).toMatch(/^cannot import exactly: /);
  });

  it('fail/ names the statement by its Sid, and checks ARNs against the given region and account', () => {
    const error = refusal(aws([{ Sid: 'Wide', Effect: 'Allow', Action: 'iot:Publish', Resource: '*' }]));
    expect(error.details.statement).toBe('Wide');
    expect(error.message).toMatch(/statement Wide:/);
    expect(refusal(aws([connectAsThing]), { region: 'eu-west-1' }).details.path).toBe('/Statement/0/Resource/0');
    expect(importAwsIotPolicy(aws([{ Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:*:*:topic/a' }]), { region: 'eu-west-1', account: '1' }).statements).toHaveLength(1);
  });

  it('fail/ refuses anything that is not a document, without throwing anything else', () => {
    for (const input of [null, 'text', 42, [], { Version: '2012-10-17', Statement: [] }, { Version: '2012-10-17', Statement: [null] }, aws([{ Effect: 'Allow', Action: [], Resource: '*' }]), aws([{ Effect: 'Allow', Action: [1], Resource: '*' }]), aws([{ Effect: 'allow', Action: 'iot:Connect', Resource: '*' }])]) {
      expect(() => importAwsIotPolicy(input)).toThrow(FleetwardError);
    }
  });
});
