/**
 * The IAM calls `cirrus deploy` makes, as a local stand-in speaking IAM's Query protocol (form
 * POSTs, XML answers) so the real @aws-sdk/client-iam drives it: roles with a trust policy and
 * tags, managed policies attached and detached (only AWS-managed ARNs that exist), inline policies
 * put, read and deleted, listings, and DeleteRole refused while policies remain (DeleteConflict).
 * A new role is not assumable by Lambda at once: `assumeRejections` CreateFunction calls naming it
 * fail first, as on AWS while the role propagates.
 */
import { randomBytes } from 'node:crypto';

const NS = 'https://iam.amazonaws.com/doc/2010-05-08/';
export const KNOWN_MANAGED_POLICIES = new Set([
  'arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
  'arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole',
  'arn:aws:iam::aws:policy/AmazonS3FullAccess',
]);

export interface RoleState {
  name: string;
  arn: string;
  roleId: string;
  path: string;
  trust: string;
  createdAt: Date;
  tags: Record<string, string>;
  attached: Set<string>;
  inline: Map<string, string>;
  /** CreateFunction calls naming this role that still fail as "cannot be assumed". */
  assumeRejectionsLeft: number;
}

export class IamError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function roleXml(r: RoleState): string {
  const tags = Object.entries(r.tags)
    .map(([k, v]) => `<member><Key>${xml(k)}</Key><Value>${xml(v)}</Value></member>`)
    .join('');
  return `<Role><Path>${xml(r.path)}</Path><RoleName>${xml(r.name)}</RoleName><RoleId>${r.roleId}</RoleId><Arn>${xml(r.arn)}</Arn><CreateDate>${r.createdAt.toISOString()}</CreateDate><AssumeRolePolicyDocument>${xml(encodeURIComponent(r.trust))}</AssumeRolePolicyDocument>${tags ? `<Tags>${tags}</Tags>` : ''}</Role>`;
}

export class IamStandIn {
  readonly roles = new Map<string, RoleState>();
  /** Every IAM action called, in order. */
  readonly calls: string[] = [];

  constructor(
    private readonly accountId: string,
    private readonly assumeRejections: () => number,
  ) {}

  /** The role an ARN names, if it exists here. */
  roleByArn(arn: string): RoleState | undefined {
    for (const r of this.roles.values()) if (r.arn === arn) return r;
    return undefined;
  }

  /** Answers one Query request: returns [status, xml body]. */
  handle(form: URLSearchParams, requestId: string): { status: number; body: string } {
    const action = form.get('Action') ?? '';
    this.calls.push(action);
    try {
      const result = this.dispatch(action, form);
      const inner = result === '' ? '' : `<${action}Result>${result}</${action}Result>`;
      return { status: 200, body: `<${action}Response xmlns="${NS}">${inner}<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>` };
    } catch (err) {
      const e = err instanceof IamError ? err : new IamError(500, 'ServiceFailure', (err as Error).message);
      return { status: e.status, body: `<ErrorResponse xmlns="${NS}"><Error><Type>${e.status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${e.code}</Code><Message>${xml(e.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>` };
    }
  }

  private role(form: URLSearchParams): RoleState {
    const name = this.required(form, 'RoleName');
    const r = this.roles.get(name);
    if (!r) throw new IamError(404, 'NoSuchEntity', `The role with name ${name} cannot be found.`);
    return r;
  }

  private required(form: URLSearchParams, field: string): string {
    const v = form.get(field);
    if (v === null || v === '') throw new IamError(400, 'ValidationError', `1 validation error detected: Value null at '${field.charAt(0).toLowerCase()}${field.slice(1)}' failed to satisfy constraint: Member must not be null`);
    return v;
  }

  private dispatch(action: string, form: URLSearchParams): string {
    switch (action) {
      case 'CreateRole': {
        const name = this.required(form, 'RoleName');
        if (!/^[\w+=,.@-]{1,64}$/.test(name)) throw new IamError(400, 'ValidationError', `The specified value for roleName is invalid: '${name}'`);
        if (this.roles.has(name)) throw new IamError(409, 'EntityAlreadyExists', `Role with name ${name} already exists.`);
        const trust = this.required(form, 'AssumeRolePolicyDocument');
        try {
          JSON.parse(trust);
        } catch {
          throw new IamError(400, 'MalformedPolicyDocument', 'This policy contains invalid Json');
        }
        const path = form.get('Path') ?? '/';
        const tags: Record<string, string> = {};
        for (let i = 1; form.has(`Tags.member.${i}.Key`); i++) tags[form.get(`Tags.member.${i}.Key`)!] = form.get(`Tags.member.${i}.Value`) ?? '';
        const role: RoleState = {
          name,
          path,
          arn: `arn:aws:iam::${this.accountId}:role${path}${name}`,
          roleId: `AROA${randomBytes(8).toString('hex').toUpperCase()}`,
          trust,
          createdAt: new Date(),
          tags,
          attached: new Set(),
          inline: new Map(),
          assumeRejectionsLeft: this.assumeRejections(),
        };
        this.roles.set(name, role);
        return roleXml(role);
      }
      case 'GetRole':
        return roleXml(this.role(form));
      case 'DeleteRole': {
        const r = this.role(form);
        if (r.attached.size > 0 || r.inline.size > 0) throw new IamError(409, 'DeleteConflict', 'Cannot delete entity, must detach all policies first.');
        this.roles.delete(r.name);
        return '';
      }
      case 'AttachRolePolicy': {
        const r = this.role(form);
        const arn = this.required(form, 'PolicyArn');
        if (!KNOWN_MANAGED_POLICIES.has(arn)) throw new IamError(404, 'NoSuchEntity', `Policy ${arn} does not exist or is not attachable.`);
        r.attached.add(arn);
        return '';
      }
      case 'DetachRolePolicy': {
        const r = this.role(form);
        const arn = this.required(form, 'PolicyArn');
        if (!r.attached.delete(arn)) throw new IamError(404, 'NoSuchEntity', `Policy ${arn} was not found.`);
        return '';
      }
      case 'ListAttachedRolePolicies': {
        const r = this.role(form);
        const members = [...r.attached].map((arn) => `<member><PolicyName>${xml(arn.slice(arn.lastIndexOf('/') + 1))}</PolicyName><PolicyArn>${xml(arn)}</PolicyArn></member>`).join('');
        return `<IsTruncated>false</IsTruncated><AttachedPolicies>${members}</AttachedPolicies>`;
      }
      case 'PutRolePolicy': {
        const r = this.role(form);
        const name = this.required(form, 'PolicyName');
        const doc = this.required(form, 'PolicyDocument');
        try {
          JSON.parse(doc);
        } catch {
          throw new IamError(400, 'MalformedPolicyDocument', 'This policy contains invalid Json');
        }
        r.inline.set(name, doc);
        return '';
      }
      case 'GetRolePolicy': {
        const r = this.role(form);
        const name = this.required(form, 'PolicyName');
        const doc = r.inline.get(name);
        if (doc === undefined) throw new IamError(404, 'NoSuchEntity', `The role policy with name ${name} cannot be found.`);
        return `<RoleName>${xml(r.name)}</RoleName><PolicyName>${xml(name)}</PolicyName><PolicyDocument>${xml(encodeURIComponent(doc))}</PolicyDocument>`;
      }
      case 'DeleteRolePolicy': {
        const r = this.role(form);
        const name = this.required(form, 'PolicyName');
        if (!r.inline.delete(name)) throw new IamError(404, 'NoSuchEntity', `The role policy with name ${name} cannot be found.`);
        return '';
      }
      case 'ListRolePolicies': {
        const r = this.role(form);
        return `<IsTruncated>false</IsTruncated><PolicyNames>${[...r.inline.keys()].map((n) => `<member>${xml(n)}</member>`).join('')}</PolicyNames>`;
      }
      default:
        throw new IamError(400, 'InvalidAction', `Could not find operation ${action} for version 2010-05-08`);
    }
  }
}
