// The retail example of examples/retail/ as the API returns it.
import type { Dataset, TargetCluster } from '../api/types';

const meta = (name: string, owner: string, description: string, tags: string[]) => ({
  name,
  owner,
  description,
  tags,
  generation: 1,
  resourceVersion: '1',
});

export const datasets: Dataset[] = [
  {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'Dataset',
    metadata: meta('shop.orders', 'team-shop', 'Every order placed in the web shop', ['orders', 'retail']),
    spec: {
      topic: 'shop.orders',
      kind: 'stream',
      key: 'id',
      timestampField: 'created_at',
      classification: 'internal',
      compatibility: 'BACKWARD',
      schema: {
        type: 'object',
        required: ['id', 'customer_id', 'amount'],
        properties: {
          id: { type: 'string' },
          customer_id: { type: 'string' },
          amount: { type: 'number' },
          currency: { type: 'string' },
          status: { type: 'string', enum: ['PLACED', 'PAID', 'SHIPPED', 'CANCELLED'] },
          created_at: { type: 'string', format: 'date-time' },
          shipping_email: { type: 'string', 'x-pii': true },
        },
      },
    },
  } as Dataset,
  {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'Dataset',
    metadata: meta('crm.customers', 'team-crm', 'Current customer records', ['customers']),
    spec: {
      topic: 'crm.customers',
      kind: 'table',
      key: 'id',
      classification: 'confidential',
      compatibility: 'BACKWARD',
      schema: {
        type: 'object',
        required: ['id'],
        properties: {
          id: { type: 'string' },
          name: { type: 'string' },
          tier: { type: 'string' },
          email: { type: 'string', 'x-pii': true },
        },
      },
    },
  } as Dataset,
  {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'Dataset',
    metadata: meta('pay.payments', 'team-pay', 'Payments captured by the payment service', ['payments']),
    spec: {
      topic: 'pay.payments',
      kind: 'stream',
      key: 'id',
      timestampField: 'created_at',
      classification: 'internal',
      compatibility: 'BACKWARD',
      schema: {
        type: 'object',
        required: ['id', 'order_id', 'amount'],
        properties: {
          id: { type: 'string' },
          order_id: { type: 'string' },
          amount: { type: 'number' },
          created_at: { type: 'string', format: 'date-time' },
        },
      },
    },
  } as Dataset,
];

export const clusters: TargetCluster[] = [
  {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'TargetCluster',
    metadata: { name: 'shared-pg' },
    spec: { type: 'postgres', url: 'postgres://sluice_admin:redacted@db:5432/postgres', isolation: 'schema', allowedTeams: ['*'] },
  } as TargetCluster,
  {
    apiVersion: 'sluice.dev/v1alpha1',
    kind: 'TargetCluster',
    metadata: { name: 'shared-redis' },
    spec: { type: 'redis', url: 'redis://redis:6379/0', isolation: 'acl-prefix', allowedTeams: ['*'] },
  } as TargetCluster,
];

export const plan = {
  version: 1,
  topics: [{ name: 'sluice.team-a.orders.v1', purpose: 'output', partitions: 6, configs: { 'cleanup.policy': 'compact' } }],
  target: {
    type: 'postgres',
    schema: 'team-a',
    table: 'orders_v1',
    view: 'orders',
    identity: { kind: 'keyField', field: 'order_id', keyType: 'string' },
    statements: ['CREATE TABLE "team-a"."orders_v1" ("order_id" text NOT NULL)'],
  },
  outputSchema: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] },
  backfill: {
    sources: [{ topic: 'shop.orders', partitions: 6, fromMs: null, events: 8516, bytes: 1464113, earliestMs: 1, retentionWarning: null }],
    events: 8516,
    bytes: 1464113,
    estimatedSeconds: 1,
  },
  requiresNewVersion: false,
  diff: null,
  preview: [{ order_id: 'o-1' }],
  warnings: [],
  summary: [],
};
