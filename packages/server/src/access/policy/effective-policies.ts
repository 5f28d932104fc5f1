/** Where a policy is attached: a thing, a group (inherited by its things and nested groups' things) or a certificate (by serial). */
export interface AttachmentTarget {
  readonly kind: 'thing' | 'group' | 'certificate';
  readonly name: string;
}

export interface Attachment {
  readonly policy: string;
  readonly target: AttachmentTarget;
}

export interface EffectivePolicy {
  readonly policy: string;
  /** The first attachment that brought it in (a policy reached several ways counts once). */
  readonly via: AttachmentTarget;
}

/**
 * The policies that apply to one connection, in evaluation order: attached to the thing, then to its
 * groups in the order given (the thing's groups and every ancestor: `Groups.groupsOf(thing).effective`),
 * then to the certificate it connected with. Order only decides which statement a decision names;
 * deny wins wherever it comes from.
 */
export function effectivePolicies(attachments: readonly Attachment[], thing: string | null, groupAncestry: readonly string[], certificateSerial: string | null): EffectivePolicy[] {
  const targets: AttachmentTarget[] = [
    ...(thing === null ? [] : [{ kind: 'thing' as const, name: thing }]),
    ...groupAncestry.map((name) => ({ kind: 'group' as const, name })),
    ...(certificateSerial === null ? [] : [{ kind: 'certificate' as const, name: certificateSerial }]),
  ];
  const result: EffectivePolicy[] = [];
  const seen = new Set<string>();
  for (const target of targets) {
    for (const attachment of attachments) {
      if (attachment.target.kind !== target.kind || attachment.target.name !== target.name || seen.has(attachment.policy)) continue;
      seen.add(attachment.policy);
      result.push({ policy: attachment.policy, via: target });
    }
  }
  return result;
}
