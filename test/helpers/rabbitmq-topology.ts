import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';

type IObjectMeta = NonNullable<IDeployment['metadata']>;

/**
 * The User and Permission kinds (rabbitmq.com/v1beta1) of the RabbitMQ Messaging Topology
 * Operator, as far as our manifests use them (api/v1beta1/user_types.go, permission_types.go; not
 * part of kubernetes-models), and RabbitMQ's permission check, to evaluate a Permission's regular
 * expressions against what the programs do (docs: "Access Control", the table of which operation
 * needs which permission on which resource).
 */

export interface RabbitmqUser {
  apiVersion: 'rabbitmq.com/v1beta1';
  kind: 'User';
  metadata: IObjectMeta & { name: string };
  spec: {
    tags?: ('management' | 'policymaker' | 'monitoring' | 'administrator')[];
    rabbitmqClusterReference: { name: string; namespace?: string };
    importCredentialsSecret?: { name: string };
  };
}

export interface RabbitmqPermission {
  apiVersion: 'rabbitmq.com/v1beta1';
  kind: 'Permission';
  metadata: IObjectMeta & { name: string };
  spec: {
    vhost: string;
    user?: string;
    userReference?: { name: string };
    permissions: { configure?: string; write?: string; read?: string };
    rabbitmqClusterReference: { name: string; namespace?: string };
  };
}

/** Runtime checks of a User or Permission that its type cannot express. */
export function checkTopologyObject(doc: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const spec = doc['spec'] as Record<string, unknown> | undefined;
  if (typeof (spec?.['rabbitmqClusterReference'] as { name?: unknown } | undefined)?.name !== 'string') problems.push('spec.rabbitmqClusterReference.name is required');
  if (doc['kind'] === 'Permission') {
    const permissions = (spec?.['permissions'] ?? {}) as Record<string, unknown>;
    if (typeof spec?.['vhost'] !== 'string') problems.push('spec.vhost is required');
    if ((spec?.['user'] === undefined) === (spec?.['userReference'] === undefined)) problems.push('exactly one of spec.user and spec.userReference');
    for (const [which, pattern] of Object.entries(permissions)) {
      try {
        new RegExp(String(pattern));
      } catch (error) {
        problems.push(`spec.permissions.${which} is not a regular expression: ${(error as Error).message}`);
      }
    }
  }
  return problems;
}

export type Access = 'configure' | 'write' | 'read';

/** A permission RabbitMQ checks: on an exchange or a queue, by name (the default exchange is amq.default). */
export interface Needed {
  access: Access;
  resource: string;
  /** What needs it, for messages. */
  why: string;
}

/** RabbitMQ's check: the resource's name matches the expression; an empty expression matches nothing. */
export function allows(permission: RabbitmqPermission, need: Pick<Needed, 'access' | 'resource'>): boolean {
  const pattern = permission.spec.permissions[need.access] ?? '';
  return pattern !== '' && new RegExp(pattern).test(need.resource === '' ? 'amq.default' : need.resource);
}

interface QueueOptions {
  arguments?: Record<string, unknown>;
}

/**
 * An amqplib channel that records what each call needs, per RabbitMQ's access table, and refuses
 * (code 403, closing itself, as the broker does) what `permission` does not allow.
 */
export function permissionCheckingChannel(permission: RabbitmqPermission): { channel: unknown; needed: Needed[]; refused: Needed[] } {
  const needed: Needed[] = [];
  const refused: Needed[] = [];
  let closed = false;
  const check = async (why: string, ...needs: [Access, string][]): Promise<void> => {
    if (closed) throw new Error('Channel closed');
    for (const [access, resource] of needs) {
      const need = { access, resource, why };
      needed.push(need);
      if (!allows(permission, need)) {
        refused.push(need);
        closed = true;
        throw Object.assign(new Error(`Operation failed: ${why}; 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - ${access} access to '${resource}' refused"`), { code: 403 });
      }
    }
  };
  const channel = {
    assertExchange: (name: string) => check(`exchange.declare ${name}`, ['configure', name]),
    assertQueue: (name: string, options: QueueOptions = {}) => {
      const dlx = options.arguments?.['x-dead-letter-exchange'];
      // queue.declare with a dead-letter exchange: configure the queue, write the DLX, read the queue.
      return typeof dlx === 'string' ? check(`queue.declare ${name}`, ['configure', name], ['write', dlx], ['read', name]) : check(`queue.declare ${name}`, ['configure', name]);
    },
    bindQueue: (queue: string, exchange: string) => check(`queue.bind ${queue} to ${exchange}`, ['write', queue], ['read', exchange]),
    deleteQueue: (queue: string) => check(`queue.delete ${queue}`, ['configure', queue]),
    // Passive declarations need no permission.
    checkQueue: () => Promise.resolve({ messageCount: 0, consumerCount: 0 }),
    checkExchange: () => Promise.resolve({}),
    publish: (exchange: string) => check(`basic.publish to ${exchange === '' ? 'amq.default' : exchange}`, ['write', exchange === '' ? 'amq.default' : exchange]),
    consume: (queue: string) => check(`basic.consume ${queue}`, ['read', queue]),
  };
  return { channel, needed, refused };
}
