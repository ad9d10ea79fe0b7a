// Types of the Sluice REST API. Resource documents come from the generated OpenAPI types
// (`npm run gen:api` against a running `sluice serve`); the plan, audit and the newer
// console endpoints are described by hand from their documented JSON.
import type { components } from './openapi';

type S = components['schemas'];

export type Dataset = S['Dataset'];
export type DatasetSpec = S['DatasetSpec'];
export type ObjectMeta = S['ObjectMeta'];
export type TargetCluster = S['TargetCluster'];
export type DataProduct = S['DataProduct'];
export type DataProductSpec = S['DataProductSpec'];
export type DataProductStatus = S['DataProductStatus'];
export type Condition = S['Condition'];
export type SourceProgress = S['SourceProgress'];
export type Approval = S['Approval'];
export type Decision = S['Decision'];
export type Phase = S['Phase'];
export type Role = S['Role'];
export type Classification = S['Classification'];
export type FieldType = S['FieldType'];
export type ProvisionedVersion = S['ProvisionedVersion'];
export type SchemaVersionDoc = S['SchemaVersionDoc'];

export const ROLES: Role[] = ['viewer', 'requester', 'owner', 'approver', 'admin', 'auditor'];
export const FIELD_TYPES: FieldType[] = [
  'string',
  'integer',
  'number',
  'boolean',
  'timestamp',
  'object',
  'array',
];
export const PHASES: Phase[] = [
  'PendingApproval',
  'Approved',
  'Provisioning',
  'Backfilling',
  'Live',
  'Degraded',
  'Failed',
  'Rejected',
  'Deleting',
];

export interface ListPage<T> {
  items: T[];
  continue?: string;
}

/** A JSON Schema of a record value, as datasets carry it (loosely typed). */
export interface JsonSchema {
  type?: string | string[];
  format?: string;
  description?: string;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  'x-pii'?: boolean;
  [key: string]: unknown;
}

// ---- DataProduct documents as the editor holds them: anything the user typed -------------

/** A product document while it is being edited: may be incomplete or invalid. */
export interface ProductDoc {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    team?: string;
    description?: string;
    labels?: Record<string, string>;
    [key: string]: unknown;
  };
  spec?: ProductSpecDraft;
  [key: string]: unknown;
}

export interface SourceDraft {
  name?: string;
  dataset?: string;
  from?: string;
  [key: string]: unknown;
}

export interface JoinDraft {
  type?: 'lookup' | 'window' | string;
  right?: string;
  on?: string;
  within?: string;
  inner?: boolean;
  propagate?: boolean;
  [key: string]: unknown;
}

export type FieldDraft = string | { expr?: string; type?: string | null; description?: string | null };

export interface TargetDraft {
  cluster?: string;
  dedicated?: { type?: string; size?: string };
  name?: string;
  mode?: 'upsert' | 'append' | string;
  options?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface ProductSpecDraft {
  sources?: SourceDraft[];
  joins?: JoinDraft[];
  filter?: string;
  key?: string;
  fields?: Record<string, FieldDraft>;
  target?: TargetDraft;
  deletionPolicy?: 'Delete' | 'Retain' | string;
  slo?: { freshness?: string };
  expires?: string;
  [key: string]: unknown;
}

// ---- Plans ---------------------------------------------------------------------------------

export interface PlanTopic {
  name: string;
  purpose: string;
  partitions: number;
  configs?: Record<string, string>;
}

export interface PostgresColumn {
  name: string;
  sqlType: string;
  notNull: boolean;
  bookkeeping: boolean;
}

export interface PlanTarget {
  type: 'postgres' | 'elasticsearch' | 'redis' | string;
  // postgres
  schema?: string;
  database?: string;
  table?: string;
  view?: string;
  role?: string;
  columns?: PostgresColumn[];
  primaryKey?: string[];
  statements?: string[];
  // elasticsearch
  index?: string;
  alias?: string;
  shards?: number;
  replicas?: number;
  createIndex?: unknown;
  aliases?: unknown;
  // redis
  prefix?: string;
  keyPrefix?: string;
  keyPattern?: string;
  pointerKey?: string;
  pointerValue?: string;
  encoding?: string;
  fields?: string[];
  ttlSeconds?: number | null;
  user?: string;
  aclRule?: string;
  identity?: { kind: string; field?: string; expr?: string; keyType?: string };
  [key: string]: unknown;
}

export interface BackfillSource {
  topic: string;
  partitions: number;
  fromMs: number | null;
  events: number;
  bytes: number;
  earliestMs: number | null;
  retentionWarning: string | null;
}

export interface PlanBackfill {
  sources: BackfillSource[];
  events: number;
  bytes: number;
  estimatedSeconds: number;
  warnings?: string[];
}

export interface SpecChange {
  path: string;
  class: 'online' | 'rebuild' | 'destructive';
  description: string;
}

export interface Plan {
  version: number;
  topics: PlanTopic[];
  target: PlanTarget;
  outputSchema: JsonSchema & { 'x-sluice-key'?: { expr: string; type: string } };
  backfill: PlanBackfill | null;
  requiresNewVersion: boolean;
  diff: SpecChange[] | null;
  preview: Record<string, unknown>[];
  warnings: string[];
  summary: string[];
}

// ---- Audit ---------------------------------------------------------------------------------

export interface AuditEntry {
  seq: number;
  time: string;
  actor: string;
  action: string;
  kind: string;
  team: string;
  name: string;
  generation: number | null;
  requestId: string;
  outcome: string;
  diff: unknown;
  prevHash?: string;
  hash?: string;
}

export interface AuditVerification {
  ok: boolean;
  entries: number;
  firstBroken: { seq: number; reason: string } | null;
}

// ---- Endpoints added for the console --------------------------------------------------------

export interface OidcConfig {
  issuer: string;
  audience: string;
  /** null when the server knows the issuer but not where the console signs people in. */
  authorizationEndpoint: string | null;
  tokenEndpoint: string | null;
  clientId: string | null;
}

/** An OIDC configuration the console can sign in with. */
export interface UsableOidc extends OidcConfig {
  authorizationEndpoint: string;
  tokenEndpoint: string;
  clientId: string;
}

export function usableOidc(c: OidcConfig | null | undefined): UsableOidc | null {
  return c && c.authorizationEndpoint && c.tokenEndpoint && c.clientId ? (c as UsableOidc) : null;
}

export interface AuthConfig {
  oidc: OidcConfig | null;
}

export interface Me {
  name: string;
  team: string | null;
  role: Role;
  via: 'token' | 'oidc';
}

export interface SampleRecord {
  partition: number;
  offset: number;
  timestamp: string | number | null;
  key: unknown;
  value: unknown;
}

export interface Samples {
  dataset: string;
  topic: string;
  records: SampleRecord[];
  masked: string[];
}

export interface LineageItem {
  team: string;
  name: string;
  phase: Phase | null;
  sources: unknown[];
}

export interface Credentials {
  target: {
    type: string;
    cluster: string;
    host: string;
    port: number;
    database: string | null;
    object: string;
  };
  username: string | null;
  password: string | null;
}
